package pbs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

func TestParseSubmit(t *testing.T) {
	p := NewPro(Options{})
	for in, want := range map[string]string{
		"1.pbs\n":                         "1.pbs",
		"  1234.server.example.org  \r\n": "1234.server.example.org",
		"1234":                            "1234",
		"12[].srv\n":                      "12[].srv",
		"12[3].srv\n":                     "12[3].srv",
		"Welcome to the cluster\nquota ok\n77.pbs01\n": "77.pbs01",
		"qsub (Warning): Interactive jobs will be treated as not rerunnable\nqsub: waiting for job 9567792.pbs02 to start\n": "9567792.pbs02",
		"qsub: job 55.pbs ready\n": "55.pbs",
	} {
		id, err := p.ParseSubmit([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Equal(t, scheduler.JobID(want), id, "%q", in)
	}
	for in, rejected := range map[string]bool{
		"":                      false,
		"\n  \n":                false,
		"hello\n":               false,
		"12 34\n":               false,
		"-12.srv\n":             false,
		"12.srv; rm -rf /\n":    false,
		"qsub: Unknown queue\n": true,
		"qsub: Job exceeds queue resource limits MSG=cannot satisfy queue max walltime requirement\n": true,
		"qsub: illegal -N value\nusage: qsub [-a date_time] ...\n":                                    true,
	} {
		_, err := p.ParseSubmit([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, "%q", in)
		if rejected {
			require.ErrorIs(t, err, scheduler.ErrSubmitRejected, "%q", in)
			require.Contains(t, err.Error(), "qsub:")
		} else {
			require.NotErrorIs(t, err, scheduler.ErrSubmitRejected, "%q", in)
		}
	}
}

func TestParseQstatJSONFields(t *testing.T) {
	js, err := ParseQstatJSON(adaptertest.Fixture(t, "pbspro-qstat-json-3.json"))
	require.NoError(t, err)
	require.Len(t, js, 1)
	j := js[0]
	require.Equal(t, scheduler.JobState{
		ID: "1.pbs", Raw: "R", Status: scheduler.StatusRunning, Queue: "workq", User: "fireuser", Name: "hello_pbs",
		Submitted: adaptertest.Local("2025-06-19 21:27:51"), Started: adaptertest.Local("2025-06-19 21:27:51"),
	}, j)

	js, err = ParseQstatJSON(adaptertest.Fixture(t, "pbspro-qstat-json-1.json"))
	require.NoError(t, err)
	require.Equal(t, scheduler.StatusHeld, js[0].Status)
	require.Equal(t, "Hold_Types u", js[0].Reason)
	require.Equal(t, "pbsuser", js[0].User)
	require.True(t, js[0].Started.IsZero())
}

// history is a PBS Pro JSON listing with finished jobs, in the layout qstat prints.
const history = `{
    "timestamp":1750368487,
    "pbs_version":"23.06.06",
    "pbs_server":"pbs",
    "Jobs":{
        "10.pbs":{
            "Job_Name":"ok",
            "Job_Owner":"alice@login1",
            "job_state":"F",
            "queue":"workq",
            "Exit_status":0,
            "substate":92,
            "qtime":"Thu Jun 19 21:27:51 2025",
            "stime":"Thu Jun 19 21:28:00 2025",
            "obittime":"Thu Jun 19 21:30:00 2025",
            "comment":"Job run at Thu Jun 19 at 21:28 on (pbs:ncpus=1) and finished"
        },
        "11.pbs":{
            "job_state":"F",
            "Exit_status":271,
            "substate":92,
            "mtime":"Thu Jun 19 22:00:00 2025"
        },
        "12.pbs":{
            "job_state":"F",
            "substate":91,
            "comment":"Job deleted"
        },
        "13.pbs":{
            "job_state":"F",
            "Exit_status":-1,
            "substate":93
        },
        "14.pbs":{
            "job_state":"F",
            "Exit_status":-3,
            "substate":92
        },
        "15.pbs":{
            "job_state":"E",
            "Exit_status":0,
            "obittime":"Thu Jun 19 21:30:00 2025"
        }
    }
}
`

func TestParseQstatJSONHistory(t *testing.T) {
	js, err := ParseQstatJSON([]byte(history))
	require.NoError(t, err)
	require.Len(t, js, 6)
	zero := 0
	require.Equal(t, scheduler.JobState{
		ID: "10.pbs", Raw: "F", Status: scheduler.StatusCompleted, Queue: "workq", User: "alice", Name: "ok",
		Reason:    "Job run at Thu Jun 19 at 21:28 on (pbs:ncpus=1) and finished",
		Submitted: adaptertest.Local("2025-06-19 21:27:51"), Started: adaptertest.Local("2025-06-19 21:28:00"), Ended: adaptertest.Local("2025-06-19 21:30:00"),
		ExitCode: &zero,
	}, js[0])
	require.Equal(t, scheduler.StatusCompleted, js[1].Status) // the exit code decides
	require.Equal(t, 271, *js[1].ExitCode)
	require.Equal(t, 15, js[1].Signal)
	require.Equal(t, adaptertest.Local("2025-06-19 22:00:00"), js[1].Ended, "mtime when there is no obittime")
	require.Equal(t, scheduler.StatusCancelled, js[2].Status)
	require.Equal(t, "Job deleted", js[2].Reason)
	require.Equal(t, scheduler.StatusFailed, js[3].Status)
	require.Equal(t, scheduler.StatusFailed, js[4].Status, "negative Exit_status: PBS could not run the job")
	require.Equal(t, scheduler.StatusRunning, js[5].Status)
	require.True(t, js[5].Ended.IsZero(), "an exiting job has not ended yet")
}

func TestParseQstatJSONBroken(t *testing.T) {
	// Invalid escapes as qstat before OpenPBS 20 printed them (openpbs/openpbs#2049).
	escapes := `{
    "pbs_version":"19.1.3",
    "Jobs":{
        "5.srv":{
            "job_state":"Q",
            "Variable_List":{
                "MYVAR":"\'\"asads\"\'",
                "LIST":"ab\,c"
            },
            "comment":"Not Running: \'quoted\'"
        }
    }
}`
	js, err := ParseQstatJSON([]byte(escapes))
	require.NoError(t, err)
	require.Len(t, js, 1)
	require.Equal(t, "Not Running: 'quoted'", js[0].Reason)

	// Numbers with leading zeros and unescaped quotes (openpbs/openpbs#1255, #830) cannot be
	// repaired; the line-by-line reading still finds the jobs.
	broken := `{
    "pbs_version":"18.1.4",
    "Jobs":{
        "6.srv":{
            "Job_Name":"a",
            "job_state":"R",
            "Variable_List":{
                "foo":005,
                "bar":"say "hi" {",
                "BASH_FUNC_m()":"() {
}"
            },
            "queue":"workq"
        },
        "7.srv":{
            "job_state":"H",
            "comment":"held "by" admin"
        }
    }
}`
	js, err = ParseQstatJSON([]byte(broken))
	require.NoError(t, err)
	require.Len(t, js, 2)
	require.Equal(t, scheduler.JobID("6.srv"), js[0].ID)
	require.Equal(t, "workq", js[0].Queue)
	require.Equal(t, "R", js[0].Raw)
	require.Equal(t, "H", js[1].Raw)
	require.Equal(t, `held "by" admin`, js[1].Reason)

	for name, in := range map[string]string{
		"garbage":           "qstat: Unknown Job Id 5.srv\n",
		"no job_state":      `{"Jobs":{"5.srv":{"queue":"q"}}}`,
		"job is not object": "{\n\"Jobs\":{\n\"5.srv\":3\n}\n}",
		"bad id":            `{"Jobs":{"5 srv":{"job_state":"Q"}}}`,
	} {
		_, err := ParseQstatJSON([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}

	for _, in := range []string{"", " \n", `{"timestamp":1,"pbs_version":"23","pbs_server":"s"}`, "\n{\n  \"pbs_version\":\"19\"\n}"} {
		js, err := ParseQstatJSON([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Empty(t, js)
	}
}

func TestProParseStatusHistoryGuard(t *testing.T) {
	empty := []byte(`{"timestamp":1,"pbs_version":"23","pbs_server":"s"}`)
	_, err := NewPro(Options{History: true}).ParseStatus(empty)
	require.ErrorIs(t, err, ErrNoHistory)
	js, err := NewPro(Options{}).ParseStatus(empty)
	require.NoError(t, err)
	require.Empty(t, js)
	js, err = NewPro(Options{History: true}).ParseAccounting(empty)
	require.NoError(t, err)
	require.Empty(t, js)
	js, err = NewPro(Options{History: true}).ParseStatus([]byte(history))
	require.NoError(t, err)
	require.Len(t, js, 6)
}

func TestParseQstatFull(t *testing.T) {
	// Torque continuation lines start with a TAB and wrap mid-word.
	in := "Job Id: 7.torque01\n" +
		"    Job_Name = x\n" +
		"    Job_Owner = bob@login\n" +
		"    job_state = C\n" +
		"    queue = batch\n" +
		"    comment = Job deleted because its dependency can ne\n" +
		"\tver be satisfied\n" +
		"    exit_status = -11\n" +
		"    start_time = Mon Mar 25 17:42:32 2024\n" +
		"    comp_time = Mon Mar 25 17:52:32 2024\n" +
		"    Variable_List = F=() {  echo\\\n" +
		"}\n" +
		"\n" +
		"Job Id: 8.torque01\n" +
		"    job_state = Q\n" +
		"    queue =\n"
	js, err := ParseQstatFull([]byte(in))
	require.NoError(t, err)
	require.Len(t, js, 2)
	require.Equal(t, scheduler.StatusTimeout, js[0].Status, "exit_status -11 is JOB_EXEC_OVERLIMIT_WT")
	require.Equal(t, "Job deleted because its dependency can never be satisfied", js[0].Reason)
	require.Equal(t, "bob", js[0].User)
	require.Equal(t, adaptertest.Local("2024-03-25 17:52:32"), js[0].Ended)
	require.Equal(t, scheduler.StatusPending, js[1].Status)
	require.Equal(t, "", js[1].Queue)

	js, err = ParseQstatFull([]byte("Job Id: 9\n    job_state = C\n    exit_status = -4\n"))
	require.NoError(t, err)
	require.Equal(t, scheduler.StatusFailed, js[0].Status)

	// Slurm's Torque wrappers indent with one TAB (testdata/cluster has real captures). In a
	// TAB-indented job an indented line that is no "name = value" still continues a value; in a
	// space-indented job a TAB line is always a continuation, even when it looks like an attribute.
	js, err = ParseQstatFull([]byte("Job Id:\t221\n\tJob_Name = x\n\tJob_Owner = bob@login\n\tjob_state = C\n" +
		"\tcomment = a long\n\t comment\n\tqueue = debug\n\n" +
		"Job Id:\t222\r\n\tjob_state = R\r\n"))
	require.NoError(t, err)
	require.Len(t, js, 2)
	require.Equal(t, scheduler.JobState{ID: "221", Raw: "C", Status: scheduler.StatusCompleted, Queue: "debug", User: "bob", Name: "x", Reason: "a longcomment"}, js[0])
	require.Equal(t, scheduler.StatusRunning, js[1].Status)
	js, err = ParseQstatFull([]byte("Job Id: 7\n    job_state = Q\n    comment = value\n\tqueue = x\n"))
	require.NoError(t, err)
	require.Equal(t, "valuequeue = x", js[0].Reason)
	require.Equal(t, "", js[0].Queue)

	for name, in := range map[string]string{
		"text before the first job": "qstat: something\nJob Id: 1\n    job_state = R\n",
		"attribute before any job":  "    job_state = R\n",
		"continuation first":        "Job Id: 1\n\tcontinued\n",
		"no job_state":              "Job Id: 1\n    queue = q\n",
		"empty id":                  "Job Id: \n    job_state = R\n",
		"id with blank":             "Job Id: 1 2\n    job_state = R\n",
	} {
		_, err := ParseQstatFull([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
	js, err = ParseQstatFull(nil)
	require.NoError(t, err)
	require.Empty(t, js)
}

func TestParseQstatTable(t *testing.T) {
	js, err := ParseQstatTable(adaptertest.Fixture(t, "pbspro-qstat-1.txt"))
	require.NoError(t, err)
	require.Equal(t, []scheduler.JobState{{
		ID: "2596901[].pbsse", Raw: "Q", Status: scheduler.StatusPending, Queue: "small-ex", User: "jdar4135", Name: "DemoHayA",
	}}, js)
	js, err = ParseQstatTable(adaptertest.Fixture(t, "pbspro-qstat-7.txt"))
	require.NoError(t, err)
	require.Equal(t, []scheduler.JobState{{
		ID: "7600424.pbs02", Raw: "R", Status: scheduler.StatusRunning, Queue: "c1_single", User: "username", Name: "pi-mpi",
	}}, js)

	// Two servers, -s comments under the rows.
	two := "\nsrvA: \n                                                            Req'd  Req'd   Elap\n" +
		"Job ID          Username Queue    Jobname    SessID NDS TSK Memory Time  S Time\n" +
		"--------------- -------- -------- ---------- ------ --- --- ------ ----- - -----\n" +
		"1.srvA          alice    workq    a             --    1   1    --  01:00 Q   -- \n" +
		"   Not Running: Insufficient amount of resource: ncpus\n" +
		"\nsrvB: \n                                                            Req'd  Req'd   Elap\n" +
		"Job ID          Username Queue    Jobname    SessID NDS TSK Memory Time  S Time\n" +
		"--------------- -------- -------- ---------- ------ --- --- ------ ----- - -----\n" +
		"2.srvB          alice    workq    b           1234    1   1    --  01:00 R 00:10\n"
	js, err = ParseQstatTable([]byte(two))
	require.NoError(t, err)
	require.Len(t, js, 2)
	require.Equal(t, scheduler.JobID("2.srvB"), js[1].ID)

	for name, in := range map[string]string{
		"no header":     "1.srv alice workq a -- 1 1 -- 01:00 Q --\n",
		"short row":     "Job id  Name  User  Time Use S Queue\n------  ----  ----  -------- - -----\n1.srv a alice 0 Q\n",
		"no S column":   "Job id  Name  User  Queue\n------  ----  ----  -----\n1.srv a alice q\n",
		"dashes first":  "------  ----  ----  -----\n",
		"no job column": "Name  User  S  Queue\n----  ----  -  -----\n",
	} {
		_, err := ParseQstatTable([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, name)
	}
	js, err = ParseQstatTable([]byte("\n\n"))
	require.NoError(t, err)
	require.Empty(t, js)
}

func TestParseTime(t *testing.T) {
	require.Equal(t, adaptertest.Local("2013-04-09 15:01:47"), parseTime("Tue Apr  9 15:01:47 2013"))
	require.Equal(t, adaptertest.Local("2013-04-09 15:01:47"), parseTime("Tue Apr 9 15:01:47 2013"))
	require.Equal(t, time.Unix(1750368487, 0), parseTime("1750368487"))
	for _, s := range []string{"", "0", "-", "yesterday", "99999999999999999999", "Tue Apr 99 15:01:47 2013"} {
		require.True(t, parseTime(s).IsZero(), "%q", s)
	}
}
