package lsf

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// fixClock makes year-less LSF times resolve against 2024-06-15 12:00 local time.
func fixClock(t *testing.T) {
	t.Helper()
	old := now
	now = func() time.Time { return adaptertest.Local("2024-06-15 12:00:00") }
	t.Cleanup(func() { now = old })
}

func TestParseSubmit(t *testing.T) {
	l := New(Options{})
	for in, want := range map[string]string{
		"Job <764254593> is submitted to queue <test>.":                                                 "764254593",
		"Job is submitted to <cpp> project.\nJob <16633929> is submitted to default queue <general>.\n": "16633929",
		"Job <607844> is submitted to queue <medium>\n":                                                 "607844",
		"  Job <1> is submitted to queue <q>.  \r\n":                                                    "1",
	} {
		id, err := l.ParseSubmit([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Equal(t, scheduler.JobID(want), id, "%q", in)
	}
	for in, rejected := range map[string]bool{
		"":                                 false,
		"Job <abc> is submitted to queue.": false,
		"Job <-1> is submitted":            false,
		"hello\n":                          false,
		"nope: No such queue. Job not submitted.\n":           true,
		"Bad resource requirement syntax. Job not submitted.": true,
	} {
		_, err := l.ParseSubmit([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, "%q", in)
		if rejected {
			require.ErrorIs(t, err, scheduler.ErrSubmitRejected, "%q", in)
		} else {
			require.NotErrorIs(t, err, scheduler.ErrSubmitRejected, "%q", in)
		}
	}
}

func TestParseStatus(t *testing.T) {
	fixClock(t)
	l := New(Options{})
	in := "101|RUN|normal|alice|-|-|-|Jun 14 10:00|Jun 14 10:05 L|-|nf-a\n" +
		"102|PEND|normal|alice|-|-|Job's requirements for reserving resource (mem) not satisfied: 2 hosts;|Jun 14 10:00|-|-|name|with|bars\n" +
		"103|EXIT|short|alice|140|TERM_RUNLIMIT: job killed after reaching LSF run time limit|-|Dec 31 23:00|Dec 31 23:30|Jan  1 00:30|b\n" +
		"104|EXIT|short|alice|130|TERM_OWNER: job killed by owner|-|Jun 14 10:00|Jun 14 10:01|Jun 14 10:02|c\n" +
		"105|DONE|short|alice|-|-|-|Jun 14 10:00|Jun 14 10:01|Jun 14 10:02|d\n" +
		"106|EXIT|short|alice|1|-|-|Jun 14 10:00|Jun 14 10:01|Jun 14 10:02|e\n" +
		"\n"
	js, err := l.ParseStatus([]byte(in))
	require.NoError(t, err)
	require.Len(t, js, 6)
	require.Equal(t, scheduler.JobState{ID: "101", Raw: "RUN", Status: scheduler.StatusRunning, Queue: "normal", User: "alice", Name: "nf-a",
		Submitted: adaptertest.Local("2024-06-14 10:00:00"), Started: adaptertest.Local("2024-06-14 10:05:00")}, js[0])
	require.Equal(t, "name|with|bars", js[1].Name)
	require.Equal(t, "Job's requirements for reserving resource (mem) not satisfied: 2 hosts;", js[1].Reason)
	require.True(t, js[1].Started.IsZero())
	require.Equal(t, scheduler.StatusTimeout, js[2].Status)
	require.Equal(t, 140, *js[2].ExitCode)
	require.Equal(t, adaptertest.Local("2023-12-31 23:00:00"), js[2].Submitted, "a December time seen in June is last year's")
	require.Equal(t, adaptertest.Local("2024-01-01 00:30:00"), js[2].Ended)
	require.Equal(t, scheduler.StatusCancelled, js[3].Status)
	require.Equal(t, scheduler.StatusCompleted, js[4].Status)
	require.Equal(t, 0, *js[4].ExitCode)
	require.Equal(t, scheduler.StatusFailed, js[5].Status)

	for name, in := range map[string]string{
		"short row":    "101|RUN|normal\n",
		"empty status": "101||normal|alice|-|-|-|-|-|-|x\n",
		"bad id":       "abc|RUN|normal|alice|-|-|-|-|-|-|x\n",
		"dash id":      "-|RUN|normal|alice|-|-|-|-|-|-|x\n",
		"error line":   "Job <12> is not found\n",
	} {
		_, err := l.ParseStatus([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
	js, err = l.ParseStatus(nil)
	require.NoError(t, err)
	require.Empty(t, js)

	_, err = ParseBjobsColumns([]string{"stat", "queue"}, []byte("RUN|q\n"))
	require.Error(t, err)
	js, err = ParseBjobsColumns([]string{"JOBID", "STAT", "jobindex"}, []byte("JOBID|STAT|JOBINDEX\n7|RUN|3\n8|PEND|0\n"))
	require.NoError(t, err)
	require.Equal(t, scheduler.JobID("7[3]"), js[0].ID)
	require.Equal(t, scheduler.JobID("8"), js[1].ID)
}

func TestParseBjobsJSON(t *testing.T) {
	in := `{"COMMAND":"bjobs","JOBS":3,"RECORDS":[
  {"JOBID":"1","STAT":"EXIT","EXIT_CODE":"2","EXIT_REASON":"TERM_MEMLIMIT: job killed after reaching LSF memory usage limit","JOB_NAME":"a"},
  {"JOBID":"2","ERROR":"Job <2> is not found"},
  {"JOBID":"3","STAT":"PEND","PEND_REASON":"New job is waiting for scheduling;","QUEUE":"normal"}]}`
	js, err := ParseBjobsJSON([]byte(in))
	require.NoError(t, err)
	require.Len(t, js, 2)
	require.Equal(t, scheduler.StatusFailed, js[0].Status)
	require.Equal(t, 2, *js[0].ExitCode)
	require.Equal(t, "New job is waiting for scheduling;", js[1].Reason)

	noID := adaptertest.Fixture(t, "lsf-bjobs-json-3.json")
	_, err = ParseBjobsJSON(noID)
	require.ErrorIs(t, err, scheduler.ErrParse)
	require.Contains(t, err.Error(), "no JOBID")
	_, err = ParseBjobsJSONFor([]scheduler.JobID{"1", "2"}, noID)
	require.ErrorIs(t, err, scheduler.ErrParse)
	js, err = ParseBjobsJSONFor([]scheduler.JobID{"58652"}, noID)
	require.NoError(t, err)
	require.Equal(t, "shahzebsiddiqui", js[0].User)

	for name, in := range map[string]string{
		"not json":   "Job <1> is not found\n",
		"truncated":  `{"RECORDS":[{"JOBID":"1"`,
		"bad record": `{"RECORDS":[{"JOBID":"x","STAT":"RUN"}]}`,
		"no status":  `{"RECORDS":[{"JOBID":"1"}]}`,
		"records":    `{"RECORDS":{"JOBID":"1"}}`,
	} {
		_, err := ParseBjobsJSON([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
	js, err = ParseBjobsJSON([]byte(" \n"))
	require.NoError(t, err)
	require.Empty(t, js)
}

func TestParseBjobsTable(t *testing.T) {
	fixClock(t)
	in := "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME\n" +
		"1234    alice   RUN   normal     login1      4*node10    my job     Jun 14 13:51\n" +
		"                                             4*node11\n" +
		"1235    alice   PEND  normal     login1                  arr[7]     Jun 14 13:52\n" +
		"1236    alice   DONE  normal     login1      node3       x          Jun 14 13:53\n"
	js, err := ParseBjobsTable([]byte(in))
	require.NoError(t, err)
	require.Len(t, js, 3)
	require.Equal(t, scheduler.JobState{ID: "1234", Raw: "RUN", Status: scheduler.StatusRunning, Queue: "normal", User: "alice", Name: "my job",
		Submitted: adaptertest.Local("2024-06-14 13:51:00")}, js[0])
	require.Equal(t, scheduler.JobID("1235[7]"), js[1].ID)
	require.Equal(t, "arr[7]", js[1].Name)
	require.Equal(t, 0, *js[2].ExitCode)

	js, err = ParseBjobsTable(adaptertest.Fixture(t, "lsf-bjobs-5.txt"))
	require.NoError(t, err)
	require.Equal(t, adaptertest.Local("2024-03-31 19:24:57"), js[0].Submitted)

	for name, in := range map[string]string{
		"no header":  "1234 alice RUN normal login1 node1 x Jun 14 13:51\n",
		"short row":  "JOBID USER STAT QUEUE FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME\n1234 alice RUN\n",
		"bad id":     "JOBID USER STAT QUEUE FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME\nx1234 alice RUN normal login1 node1 x Jun 14 13:51\n",
		"json input": `{"RECORDS":[]}`,
	} {
		_, err := ParseBjobsTable([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
	for _, in := range []string{"", "LSF is processing your request. Please wait ...\nNo unfinished job found\n"} {
		js, err := ParseBjobsTable([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Empty(t, js)
	}
}

func TestParseBjobsLong(t *testing.T) {
	js, err := ParseBjobsLong(adaptertest.Fixture(t, "lsf-bjobs-9.txt"))
	require.NoError(t, err)
	require.Len(t, js, 1)
	require.Equal(t, scheduler.JobID("2073"), js[0].ID)
	require.Equal(t, "EXIT", js[0].Raw, `"St" / "atus <EXIT>" is joined across the wrap`)
	require.Equal(t, "GRunApplication.0", js[0].Name)
	require.Equal(t, "markmon", js[0].User)
	require.Equal(t, "normal", js[0].Queue)
	require.Equal(t, 127, *js[0].ExitCode)
	require.Equal(t, adaptertest.Local("2014-08-04 12:28:51"), js[0].Submitted)

	pending := "\nJob <3>, Job Name <p>, User <alice>, Project <default>, Status <PEND>, Queue <nor\n" +
		"                          mal>, Command <sleep 1>\n" +
		"Mon Aug  4 12:28:51 2014: Submitted from host <login1>, CWD <$HOME>;\n" +
		" PENDING REASONS:\n" +
		" New job is waiting for scheduling: 1 host;\n" +
		" Job dependency condition not satisfied;\n" +
		"\n" +
		" SCHEDULING PARAMETERS:\n" +
		"------------------------------------------------------------------------------\n" +
		"\nJob <4>, User <alice>, Project <default>, Status <RUN>, Queue <normal>, Command <x, Status <DONE>>\n" +
		"Mon Aug  4 12:30:00 2014: Started 1 Task(s) on Host(s) <node1>, Allocated 1 Slot(s);\n"
	js, err = ParseBjobsLong([]byte(pending))
	require.NoError(t, err)
	require.Len(t, js, 2)
	require.Equal(t, scheduler.StatusPending, js[0].Status)
	require.Equal(t, "normal", js[0].Queue)
	require.Equal(t, "New job is waiting for scheduling: 1 host; Job dependency condition not satisfied", js[0].Reason)
	require.Equal(t, "RUN", js[1].Raw, "a Status inside the Command is not the job's")
	require.Equal(t, adaptertest.Local("2014-08-04 12:30:00"), js[1].Started)

	for name, in := range map[string]string{
		"no job line": "Status <RUN>\n",
		"no status":   "Job <5>, User <alice>, Command <x>\n",
		"bad id":      "Job <x5>, User <alice>, Status <RUN>\n",
		"stray block": "Job <5>, Status <RUN>\n--------------------------------\ngarbage\n--------------------------------\n",
	} {
		_, err := ParseBjobsLong([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
	js, err = ParseBjobsLong([]byte("\n\n"))
	require.NoError(t, err)
	require.Empty(t, js)
}

// bhistOut is bhist -l output in LSF's layout (EBI and LSF 10 captures): wrapped at column 80 with
// 21-space continuations, jobs separated by dashes.
const bhistOut = `
Job <872795>, User <rasko>, Project <default>, Command <echo hello>, Esub <esub
                     >
Sun Jan 10 17:47:38: Submitted from host <noah-login-01>, to Queue <research-rh
                     74>, CWD <$HOME>, Requested Resources <rusage[numcpus=1:du
                     ration=480]>;
Sun Jan 10 17:47:39: Dispatched to <hx-noah-05-14>, Effective RES_REQ <select[t
                     ype == local] order[r15s:pg] rusage[numcpus=1.00:duration=
                     8h:decay=0] span[hosts=1] >;
Sun Jan 10 17:47:39: Starting (Pid 110245);
Sun Jan 10 17:47:39: Running with execution home </homes/rasko>, Execution CWD
                     </homes/rasko>, Execution Pid <110245>;
Sun Jan 10 17:47:39: Done successfully. The CPU time used is 0.0 seconds;
Sun Jan 10 17:47:40: Post job process done successfully;


 CORELIMIT
      0 M

Summary of time in seconds spent in various states by  Sun Jan 10 17:47:40
  PEND     PSUSP    RUN      USUSP    SSUSP    UNKWN    TOTAL
  1        0        0        0        0        0        1
------------------------------------------------------------------------------

Job <873209>, Job Name <fdfs>, User <rasko>, Project <default>, Command <fdfs>
Sun Jan 10 17:50:11: Submitted from host <noah-login-01>, to Queue <research-rh
                     74>, CWD <$HOME>;
Sun Jan 10 17:50:12: Dispatched to <hx-noah-10-04>;
Sun Jan 10 17:50:12: Starting (Pid 87178);
Sun Jan 10 17:50:12: Exited with exit code 127. The CPU time used is 0.0 second
                     s;
Sun Jan 10 17:50:12: Completed <exit>;

Summary of time in seconds spent in various states by  Sun Jan 10 17:50:12
  PEND     PSUSP    RUN      USUSP    SSUSP    UNKWN    TOTAL
  1        0        0        0        0        0        1
------------------------------------------------------------------------------

Job <873300>, User <rasko>, Project <default>, Command <sleep 999>
Sun Jan 10 18:00:00: Submitted from host <noah-login-01>, to Queue <short>, CWD <$HOME>;
Sun Jan 10 18:00:01: Dispatched to <hx-noah-10-04>;
Sun Jan 10 18:00:01: Starting (Pid 87178);
Sun Jan 10 18:11:02: Exited with exit code 140. The CPU time used is 0.0 seconds;
Sun Jan 10 18:11:02: Completed <exit>; TERM_RUNLIMIT: job killed after reaching LSF run time limit.
------------------------------------------------------------------------------

Job <873301>, User <rasko>, Project <default>, Command <sleep 999>
Sun Jan 10 18:00:00: Submitted from host <noah-login-01>, to Queue <short>, CWD <$HOME>;
Sun Jan 10 18:05:00: Suspended by the user or administrator <rasko>;
`

func TestParseBhistLong(t *testing.T) {
	fixClock(t)
	js, err := New(Options{}).ParseAccounting([]byte(bhistOut))
	require.NoError(t, err)
	require.Len(t, js, 4)
	zero := 0
	require.Equal(t, scheduler.JobState{
		ID: "872795", Raw: "DONE", Status: scheduler.StatusCompleted, Queue: "research-rh74", User: "rasko",
		Submitted: adaptertest.Local("2024-01-10 17:47:38"), Started: adaptertest.Local("2024-01-10 17:47:39"), Ended: adaptertest.Local("2024-01-10 17:47:39"), ExitCode: &zero,
	}, js[0])
	require.Equal(t, "EXIT", js[1].Raw)
	require.Equal(t, scheduler.StatusFailed, js[1].Status)
	require.Equal(t, 127, *js[1].ExitCode)
	require.Equal(t, "fdfs", js[1].Name)
	require.Equal(t, scheduler.StatusTimeout, js[2].Status)
	require.Equal(t, "TERM_RUNLIMIT: job killed after reaching LSF run time limit", js[2].Reason)
	require.Equal(t, "PSUSP", js[3].Raw)
	require.Equal(t, scheduler.StatusHeld, js[3].Status)
	require.True(t, js[3].Ended.IsZero())

	_, err = ParseBhistLong([]byte("Job <9>, User <a>, Command <x>\nno events here\n"))
	require.ErrorIs(t, err, scheduler.ErrParse)
	js, err = ParseBhistLong(nil)
	require.NoError(t, err)
	require.Empty(t, js)
}

func TestParseTime(t *testing.T) {
	fixClock(t)
	for in, want := range map[string]time.Time{
		"Feb  2 00:46":             adaptertest.Local("2024-02-02 00:46:00"),
		"Feb  2 01:53 L":           adaptertest.Local("2024-02-02 01:53:00"),
		"Jun 16 11:00":             adaptertest.Local("2024-06-16 11:00:00"),
		"Jun 17 11:00":             adaptertest.Local("2023-06-17 11:00:00"),
		"Mon Aug  4 12:28:51 2014": adaptertest.Local("2014-08-04 12:28:51"),
		"Sun Jan 10 17:47:38":      adaptertest.Local("2024-01-10 17:47:38"),
		"03/31-19:24:57":           adaptertest.Local("2024-03-31 19:24:57"),
		"2019/03/31-19:24:57":      adaptertest.Local("2019-03-31 19:24:57"),
	} {
		require.Equal(t, want, parseTime(in), in)
	}
	for _, in := range []string{"", "-", " 15.00% L", "soon", "Feb 30 00:46"} {
		require.True(t, parseTime(in).IsZero(), in)
	}
}
