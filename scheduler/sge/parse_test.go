package sge

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

func TestParseSubmit(t *testing.T) {
	s := New(Options{})
	for in, want := range map[string]string{
		"123\n":        "123",
		" 123 \r\n":    "123",
		"123.1-10:1\n": "123",
		"Your job 3891651 (\"MV1\") has been submitted":                         "3891651",
		"Your job-array 123.1-10:2 (\"arr\") has been submitted\n":              "123",
		"Your job 7 (\"name with (parens) and \"quotes\"\") has been submitted": "7",
		"warning: no suitable queues\n456\n":                                    "456",
	} {
		id, err := s.ParseSubmit([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Equal(t, scheduler.JobID(want), id, "%q", in)
	}
	for in, rejected := range map[string]bool{
		"":                              false,
		"\n":                            false,
		"12a\n":                         false,
		"Your job has been submitted\n": false,
		"Unable to run job: Job was rejected because job requests unknown queue \"nope\".\nExiting.\n": true,
	} {
		_, err := s.ParseSubmit([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, "%q", in)
		if rejected {
			require.ErrorIs(t, err, scheduler.ErrSubmitRejected, "%q", in)
			require.Contains(t, err.Error(), "unknown queue")
		} else {
			require.NotErrorIs(t, err, scheduler.ErrSubmitRejected, "%q", in)
		}
	}
}

const arrayXML = `<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>1046</JB_job_number>
      <JAT_prio>0.55500</JAT_prio>
      <JB_name>arr</JB_name>
      <JB_owner>alice</JB_owner>
      <state>r</state>
      <JAT_start_time>2020-01-02T03:04:05.678</JAT_start_time>
      <queue_name>all.q@node1</queue_name>
      <slots>1</slots>
      <tasks>3</tasks>
      <requested_pe name="smp">4</requested_pe>
      <hard_request name="h_vmem" resource_contribution="0.000000">1G</hard_request>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>1046</JB_job_number>
      <JB_name>arr</JB_name>
      <JB_owner>alice</JB_owner>
      <state>qw</state>
      <JB_submission_time>2020-01-02T03:00:00</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
      <tasks>5-10:2</tasks>
    </job_list>
    <job_list state="pending">
      <JB_job_number>1047</JB_job_number>
      <state>dr</state>
      <JAT_start_time>2020-01-02T03:04:05</JAT_start_time>
    </job_list>
  </job_info>
</job_info>`

func TestParseQstatXML(t *testing.T) {
	js, err := ParseQstatXML([]byte(arrayXML))
	require.NoError(t, err)
	require.Equal(t, []scheduler.JobState{
		{ID: "1046.3", Raw: "r", Status: scheduler.StatusRunning, Queue: "all.q@node1", User: "alice", Name: "arr", Started: time.Date(2020, 1, 2, 3, 4, 5, 678e6, time.Local)},
		{ID: "1046.5-10:2", Raw: "qw", Status: scheduler.StatusPending, User: "alice", Name: "arr", Submitted: adaptertest.Local("2020-01-02 03:00:00")},
		{ID: "1047", Raw: "dr", Status: scheduler.StatusCancelled, Reason: "being deleted", Started: adaptertest.Local("2020-01-02 03:04:05")},
	}, js)

	// -F output: jobs inside Queue-List take the queue's name; the queue's own <state> is ignored.
	js, err = ParseQstatXML(adaptertest.Fixture(t, "sge-qstat-xml-9.xml"))
	require.NoError(t, err)
	require.Equal(t, "alice@da-p4-04.ceta-ciemat.es", js[0].Queue)

	for _, in := range []string{"", "\n", "<?xml version='1.0'?>\n<job_info>\n  <queue_info>\n  </queue_info>\n  <job_info>\n  </job_info>\n</job_info>\n"} {
		js, err := ParseQstatXML([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Empty(t, js)
	}
	for name, in := range map[string]string{
		"not xml":       "error: commlib error: got select error (Connection refused)\n",
		"other root":    "<html><body>x</body></html>",
		"truncated":     "<job_info><queue_info><job_list><JB_job_number>1</JB_job_number>",
		"no number":     "<job_info><job_list><state>r</state></job_list></job_info>",
		"no state":      "<job_info><job_list><JB_job_number>1</JB_job_number></job_list></job_info>",
		"bad number":    "<job_info><job_list><JB_job_number>1 2</JB_job_number><state>r</state></job_list></job_info>",
		"blank in task": "<job_info><job_list><JB_job_number>1</JB_job_number><state>r</state><tasks>1 2</tasks></job_list></job_info>",
		"mismatched":    "<job_info><job_list></job_info>",
	} {
		_, err := ParseQstatXML([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
}

func TestParseQstatTable(t *testing.T) {
	js, err := ParseQstatTable(adaptertest.Fixture(t, "sge-qstat-3.txt"))
	require.NoError(t, err)
	require.Equal(t, []scheduler.JobState{{
		ID: "217940", Raw: "qw", Status: scheduler.StatusPending, User: "creisle", Name: "subtest.sh", Submitted: adaptertest.Local("2018-05-22 23:39:55"),
	}}, js)

	in := "job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID\n" +
		"-----------------------------------------------------------------------------------------------------------------\n" +
		"     12 0.50000 my job     alice        r     05/23/2018 13:44:12 all.q@n1                           4\n" +
		"     13 0.00000 arr        alice        qw    05/23/2018 13:44:12                                    1 1-10:2\n" +
		"     14 0.00000 arr        alice        hqw   05/23/2018 13:44:12                                    1\n"
	js, err = ParseQstatTable([]byte(in))
	require.NoError(t, err)
	require.Len(t, js, 3)
	require.Equal(t, "my job", js[0].Name)
	require.Equal(t, "all.q@n1", js[0].Queue)
	require.Equal(t, scheduler.JobID("13.1-10:2"), js[1].ID)
	require.Equal(t, "", js[1].Queue)
	require.Equal(t, scheduler.StatusHeld, js[2].Status)
	require.Equal(t, adaptertest.Local("2018-05-23 13:44:12"), js[2].Submitted)

	for name, in := range map[string]string{
		"no header":    "12 0.5 a alice r 05/23/2018 13:44:12 q 1\n",
		"no dashes":    "job-ID prior name\n12 0.5 a alice r 05/23/2018 13:44:12 q 1\n",
		"header only":  "job-ID prior name user state submit/start at queue slots ja-task-ID\n",
		"no date":      "job-ID prior\n------\n12 0.5 a alice r yesterday q 1\n",
		"id not a num": "job-ID prior\n------\nx12 0.5 a alice r 05/23/2018 13:44:12 q 1\n",
		"bad task":     "job-ID prior\n------\n12 0.5 a alice r 05/23/2018 13:44:12 q 1 \x01\n",
	} {
		_, err := ParseQstatTable([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
	js, err = ParseQstatTable(nil)
	require.NoError(t, err)
	require.Empty(t, js)
}

// qacctOut is qacct -j output in the layouts of SGE 6.2 (ctime dates) and Son of Grid Engine 8.1.9
// (MM/DD/YYYY dates with milliseconds).
const qacctOut = `==============================================================
qname        all.q
hostname     node01
group        users
owner        alice
project      NONE
department   defaultdepartment
jobname      nf-align
jobnumber    1001
taskid       undefined
account      sge
priority     0
qsub_time    Tue Jun 18 12:00:57 2013
start_time   Tue Jun 18 12:08:23 2013
end_time     Tue Jun 18 13:08:23 2013
granted_pe   NONE
slots        1
failed       0
exit_status  0
ru_wallclock 3600
==============================================================
qname        all.q
owner        alice
jobname      rerun
jobnumber    1002
taskid       undefined
qsub_time    03/21/2019 10:49:30.588
start_time   03/21/2019 10:50:00.000
end_time     03/21/2019 10:51:00.000
failed       100 : assumedly after job
exit_status  137
==============================================================
qname        all.q
owner        alice
jobname      slow
jobnumber    1003
taskid       undefined
failed       37  : qmaster enforced h_rt limit
exit_status  0
==============================================================
qname        all.q
owner        alice
jobname      arr
jobnumber    1004
taskid       3
start_time   -/-
failed       0
exit_status  1
==============================================================
qname        all.q
owner        alice
jobname      rerun
jobnumber    1002
taskid       undefined
qsub_time    03/21/2019 10:49:30.588
start_time   03/21/2019 11:00:00.000
end_time     03/21/2019 11:01:00.000
failed       0
exit_status  0
==============================================================
owner        bob
jobnumber    1005
failed       1       : failed before job (no such queue)
deleted_by   root
exit_status  0
`

func TestParseQacct(t *testing.T) {
	js, err := ParseQacct([]byte(qacctOut))
	require.NoError(t, err)
	require.Len(t, js, 5)
	zero, one := 0, 1
	require.Equal(t, scheduler.JobState{
		ID: "1001", Raw: "failed 0", Status: scheduler.StatusCompleted, Queue: "all.q", User: "alice", Name: "nf-align",
		Submitted: adaptertest.Local("2013-06-18 12:00:57"), Started: adaptertest.Local("2013-06-18 12:08:23"), Ended: adaptertest.Local("2013-06-18 13:08:23"), ExitCode: &zero,
	}, js[0])
	require.Equal(t, scheduler.JobState{ // the re-run's last record, at the place of the first
		ID: "1002", Raw: "failed 0", Status: scheduler.StatusCompleted, Queue: "all.q", User: "alice", Name: "rerun",
		Submitted: time.Date(2019, 3, 21, 10, 49, 30, 588e6, time.Local), Started: adaptertest.Local("2019-03-21 11:00:00"), Ended: adaptertest.Local("2019-03-21 11:01:00"), ExitCode: &zero,
	}, js[1])
	require.Equal(t, scheduler.StatusTimeout, js[2].Status)
	require.Equal(t, "failed 37", js[2].Raw)
	require.Equal(t, "qmaster enforced h_rt limit", js[2].Reason)
	require.Equal(t, scheduler.JobID("1004.3"), js[3].ID)
	require.Equal(t, &one, js[3].ExitCode)
	require.True(t, js[3].Started.IsZero())
	require.Equal(t, scheduler.StatusCancelled, js[4].Status)
	require.Equal(t, "failed before job (no such queue)", js[4].Reason)

	js, err = ParseQacct([]byte("==============================================================\nowner alice\njobnumber 9\nfailed 100 : assumedly after job\nexit_status 137\n"))
	require.NoError(t, err)
	require.Equal(t, scheduler.StatusFailed, js[0].Status)
	require.Equal(t, 9, js[0].Signal, "exit_status 137 is SIGKILL")

	// The usage summary after the records is no record, also when a record's lines follow it
	// after a separator (and the summary of an owner without jobs is no jobs).
	js, err = ParseQacct([]byte("==============================================================\njobnumber 9\nfailed 0\nexit_status  2                    \n" +
		"OWNER     WALLCLOCK         UTIME\n==================================\nalice             4         0.039\n" +
		"==============================================================\njobnumber 10\nexit_status  137                  (Killed)\n"))
	require.NoError(t, err)
	require.Len(t, js, 2)
	require.Equal(t, 2, *js[0].ExitCode)
	require.Equal(t, scheduler.JobID("10"), js[1].ID)
	require.Equal(t, 137, *js[1].ExitCode)
	js, err = ParseQacct([]byte("Total System Usage\n    WALLCLOCK         UTIME\n==================\n            6         0.084\n"))
	require.NoError(t, err)
	require.Empty(t, js)

	for name, in := range map[string]string{
		"text first":   "Welcome to the cluster\n====================\njobnumber 1\n",
		"no jobnumber": "==============================================================\nowner alice\n",
		"bad number":   "==============================================================\njobnumber x1\n",
		"bad task":     "==============================================================\njobnumber 1\ntaskid 1 2\n",
	} {
		_, err := ParseQacct([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
	js, err = ParseQacct(nil)
	require.NoError(t, err)
	require.Empty(t, js)
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2013-06-18T12:08:23":      adaptertest.Local("2013-06-18 12:08:23"),
		"Tue Jun 18 12:00:57 2013": adaptertest.Local("2013-06-18 12:00:57"),
		"Tue Jun  4 12:00:57 2013": adaptertest.Local("2013-06-04 12:00:57"),
		"03/21/2019 10:49:30":      adaptertest.Local("2019-03-21 10:49:30"),
	} {
		require.Equal(t, want, parseTime(in), in)
	}
	for _, in := range []string{"", "-/-", "0", "Thu Jan  1 01:00:00 1970", "soon"} {
		require.True(t, parseTime(in).IsZero(), in)
	}
}
