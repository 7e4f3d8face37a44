package slurm

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

func local(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
	if err != nil {
		panic(err)
	}
	return t
}

func intp(i int) *int { return &i }

func find(t testing.TB, states []scheduler.JobState, id string) scheduler.JobState {
	t.Helper()
	for _, s := range states {
		if string(s.ID) == id {
			return s
		}
	}
	t.Fatalf("job %s not in %v", id, states)
	return scheduler.JobState{}
}

func TestParseSubmit(t *testing.T) {
	s := New(Options{})
	tests := []struct {
		name, in, want string
		rejected       bool
	}{
		{name: "parsable", in: "123\n", want: "123"},
		{name: "parsable cluster", in: "123;cluster1\n", want: "123"},
		{name: "sentence", in: "Submitted batch job 4567\n", want: "4567"},
		{name: "sentence on cluster", in: "Submitted batch job 4567 on cluster mpp2", want: "4567"},
		// Older releases printed the sentence through their logger, prefixed with the program.
		{name: "old sbatch prefix", in: "sbatch: Submitted batch job 1032\n", want: "1032"},
		{name: "old sbatch prefix after a warning", in: "sbatch: Warning: can't honor --ntasks-per-node\nsbatch: Submitted batch job 88\n", want: "88"},
		{name: "other program's prefix is not sbatch's", in: "srun: Submitted batch job 5\n"},
		{name: "banner before", in: "Welcome to HPC\nsbatch: Warning: x 12\n99\n", want: "99"},
		{name: "crlf and blanks", in: "  77  \r\n\r\n", want: "77"},
		{name: "last matching line wins", in: "12\nSubmitted batch job 13\n", want: "13"},
		{name: "empty", in: ""},
		{name: "blank lines only", in: "\n \n"},
		{name: "garbage", in: "hello world\n"},
		{name: "id with text", in: "123 abc\n"},
		{name: "negative", in: "-5\n"},
		{name: "rejected", in: "sbatch: error: Batch job submission failed: Invalid partition name specified\n", rejected: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := s.ParseSubmit([]byte(tt.in))
			if tt.want == "" {
				require.ErrorIs(t, err, scheduler.ErrParse)
				if tt.rejected {
					require.ErrorIs(t, err, scheduler.ErrSubmitRejected)
					require.Contains(t, err.Error(), "Invalid partition name")
				}
				if strings.TrimSpace(tt.in) != "" && !tt.rejected {
					require.Contains(t, err.Error(), strings.TrimSpace(strings.Split(strings.TrimSpace(tt.in), "\n")[0]))
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, scheduler.JobID(tt.want), id)
		})
	}
}

func TestParseStatusFields(t *testing.T) {
	s := New(Options{})
	states, err := s.ParseStatus(adaptertest.Fixture(t, "slurm-local-squeue-ferry-1.txt"))
	require.NoError(t, err)
	require.Len(t, states, 11)

	pipe := find(t, states, "25")
	require.Equal(t, scheduler.JobState{
		ID: "25", Raw: "R", Status: scheduler.StatusRunning, Queue: "debug", User: "root", Name: "fx pipe|name x",
		Submitted: local("2026-11-28T23:03:06"), Started: local("2026-11-28T23:03:07"),
	}, pipe, "the name keeps its '|', the end of a running job is not an end")

	held := find(t, states, "17")
	require.Equal(t, scheduler.StatusPending, held.Status)
	require.Equal(t, "JobHeldUser", held.Reason)
	require.True(t, held.Started.IsZero())

	failed := find(t, states, "21")
	require.Equal(t, scheduler.StatusFailed, failed.Status)
	require.Equal(t, "NonZeroExitCode", failed.Reason)
	require.Equal(t, local("2026-11-28T23:03:08"), failed.Ended)
	require.Nil(t, failed.ExitCode, "squeue reports no exit code")

	requeue := find(t, states, "23")
	require.Equal(t, "CG", requeue.Raw)
	require.Equal(t, scheduler.StatusRunning, requeue.Status)
	require.Equal(t, "job requeued in held state", requeue.Reason)

	states, err = s.ParseStatus(adaptertest.Fixture(t, "slurm-local-squeue-ferry-2.txt"))
	require.NoError(t, err)
	rq := find(t, states, "23")
	require.Equal(t, scheduler.StatusPending, rq.Status)
	require.True(t, rq.Started.IsZero(), "the expected start of a pending job is not a start")
	require.Equal(t, scheduler.StatusHeld, find(t, states, "24").Status)
	require.Equal(t, scheduler.StatusCancelled, find(t, states, "22").Status)

	states, err = s.ParseStatus(adaptertest.Fixture(t, "slurm-local-squeue-ferry-epoch.txt"))
	require.NoError(t, err)
	run := find(t, states, "18")
	require.Equal(t, time.Unix(1795906986, 0), run.Submitted)
	require.Equal(t, time.Unix(1795906987, 0), run.Started)
	require.True(t, run.Ended.IsZero())
}

func TestParseStatusLines(t *testing.T) {
	s := New(Options{})
	tests := []struct {
		name    string
		in      string
		want    []string // id=Raw/status
		errLine string   // substring of the error
	}{
		{name: "empty", in: "", want: nil},
		{name: "blank lines", in: "\n\n  \n", want: nil},
		{name: "one", in: "1|R|None|p|u|N/A|N/A|N/A|n\n", want: []string{"1=R/running"}},
		{name: "no trailing newline", in: "1|PD|Priority|p|u|N/A|N/A|N/A|n", want: []string{"1=PD/pending"}},
		{name: "crlf", in: "1|CD|None|p|u|N/A|N/A|N/A|n\r\n", want: []string{"1=CD/completed"}},
		{name: "empty name", in: "1|F|None|p|u|N/A|N/A|N/A|\n", want: []string{"1=F/failed"}},
		{name: "unknown state", in: "1|XX|None|p|u|N/A|N/A|N/A|n\n", want: []string{"1=XX/unknown"}},
		{name: "question mark", in: "1|?|None|p|u|N/A|N/A|N/A|n\n", want: []string{"1=?/unknown"}},
		{name: "array and het ids", in: "5_[1-3]|PD|None|p|u|N/A|N/A|N/A|n\n5_4|R|None|p|u|N/A|N/A|N/A|n\n9+1|R|None|p|u|N/A|N/A|N/A|n\n",
			want: []string{"5_[1-3]=PD/pending", "5_4=R/running", "9+1=R/running"}},
		{name: "too few fields", in: "1|R|None|p|u|N/A|N/A|N/A|n\nWelcome to the cluster\n", errLine: "line 2 has 1 fields"},
		{name: "eight fields", in: "1|R|None|p|u|N/A|N/A|N/A\n", errLine: "line 1 has 8 fields"},
		{name: "empty id", in: "|R|None|p|u|N/A|N/A|N/A|n\n", errLine: "line 1"},
		{name: "empty state", in: "1||None|p|u|N/A|N/A|N/A|n\n", errLine: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			states, err := s.ParseStatus([]byte(tt.in))
			if tt.errLine != "" {
				require.ErrorIs(t, err, scheduler.ErrParse)
				require.Contains(t, err.Error(), tt.errLine)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, js := range states {
				got = append(got, string(js.ID)+"="+js.Raw+"/"+string(js.Status))
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseAccountingFields(t *testing.T) {
	s := New(Options{})
	states, err := s.ParseAccounting(adaptertest.Fixture(t, "slurm-local-sacct-ferry-steps.txt"))
	require.NoError(t, err)

	require.Equal(t, scheduler.JobState{
		ID: "22", Raw: "CANCELLED", Status: scheduler.StatusCancelled, Queue: "debug", User: "root", Name: "fx-cancel",
		ExitCode:  intp(0),
		Submitted: local("2026-11-28T23:03:06"), Started: local("2026-11-28T23:03:07"), Ended: local("2026-11-28T23:03:10"),
	}, find(t, states, "22"), "'CANCELLED by 0' loses its decoration")

	step := find(t, states, "22.batch")
	require.Equal(t, scheduler.StatusCancelled, step.Status)
	require.Equal(t, 0, *step.ExitCode)
	require.Equal(t, 15, step.Signal)
	require.Empty(t, step.Queue)

	fail := find(t, states, "21")
	require.Equal(t, 3, *fail.ExitCode)
	require.Equal(t, 0, fail.Signal)

	to := find(t, states, "16")
	require.Equal(t, scheduler.StatusTimeout, to.Status)
	require.Empty(t, to.Reason, "None is no reason")

	require.Equal(t, "fx pipe|name x", find(t, states, "25").Name)
	require.True(t, find(t, states, "17").Started.IsZero())

	states, err = s.ParseAccounting(adaptertest.Fixture(t, "slurm-local-sacct-ferry-epoch.txt"))
	require.NoError(t, err)
	require.Equal(t, time.Unix(1795907011, 0), find(t, states, "16").Ended)
}

func TestParseAccountingLines(t *testing.T) {
	s := New(Options{})
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, js []scheduler.JobState)
		errLine string
	}{
		{name: "empty", in: "", check: func(t *testing.T, js []scheduler.JobState) { require.Empty(t, js) }},
		{name: "negative exit", in: "7.0|CANCELLED by 1000|-2:0||||N/A|N/A|N/A|x\n", check: func(t *testing.T, js []scheduler.JobState) {
			require.Equal(t, -2, *js[0].ExitCode)
			require.Equal(t, "CANCELLED", js[0].Raw)
		}},
		{name: "het component", in: "93+0|COMPLETED|0:0|None|p|u|N/A|N/A|N/A|x\n", check: func(t *testing.T, js []scheduler.JobState) {
			require.Equal(t, scheduler.JobID("93+0"), js[0].ID)
		}},
		{name: "empty exit", in: "7|PENDING||None|p|u|N/A|N/A|N/A|x\n", check: func(t *testing.T, js []scheduler.JobState) {
			require.Nil(t, js[0].ExitCode)
		}},
		{name: "oom", in: "7|OUT_OF_MEMORY|0:125|None|p|u|N/A|N/A|N/A|x\n", check: func(t *testing.T, js []scheduler.JobState) {
			require.Equal(t, scheduler.StatusFailed, js[0].Status)
		}},
		{name: "bad exit", in: "7|FAILED|x:y|None|p|u|N/A|N/A|N/A|x\n", errLine: "line 1"},
		{name: "too few", in: "7|FAILED|1:0\n", errLine: "line 1 has 3 fields"},
		{name: "second line bad", in: "7|FAILED|1:0|None|p|u|N/A|N/A|N/A|x\noops\n", errLine: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := s.ParseAccounting([]byte(tt.in))
			if tt.errLine != "" {
				require.ErrorIs(t, err, scheduler.ErrParse)
				require.Contains(t, err.Error(), tt.errLine)
				return
			}
			require.NoError(t, err)
			tt.check(t, js)
		})
	}
}

func TestParseSqueueTable(t *testing.T) {
	states, err := ParseSqueueTable(adaptertest.Fixture(t, "slurm-local-squeue-default.txt"))
	require.NoError(t, err)
	require.Equal(t, "fx pipe|", find(t, states, "25").Name, "a blank in a cut name goes to NAME")
	require.Equal(t, "job requeued in held state", find(t, states, "23").Reason, "a reason with blanks is joined back")
	require.Empty(t, find(t, states, "18").Reason, "a node list is not a reason")
	require.Equal(t, "root", find(t, states, "18").User)

	states, err = ParseSqueueTable(adaptertest.Fixture(t, "slurm-squeue-3.txt"))
	require.NoError(t, err)
	require.Equal(t, "cupd3_n_fcc_mix_n15\x1fcohp", find(t, states, "6779842").Name, "the surplus field goes to NAME")
	require.Equal(t, "TimeLimit", find(t, states, "6783828").Reason)
	require.Equal(t, scheduler.StatusTimeout, find(t, states, "6783828").Status)

	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{name: "empty", in: ""},
		{name: "header only", in: "JOBID PARTITION NAME USER ST TIME NODES NODELIST(REASON)\n"},
		{name: "reason with blanks and name with blanks",
			in:   "JOBID PARTITION NAME USER ST TIME NODES NODELIST(REASON)\n5 p my job u PD 0:00 1 (launch failed requeued held)\n",
			want: []string{"5|PD|my job|launch failed requeued held"}},
		{name: "missing nodelist", in: "JOBID PARTITION NAME USER ST TIME NODES NODELIST(REASON)\n5 p n u CG 0:00 1\n",
			want: []string{"5|CG|n|"}},
		{name: "pipe separated", in: "JOBID|STATE|NAME\n5|RUNNING|a|b\n", want: []string{"5|RUNNING|a|b|"}},
		{name: "data before header", in: "5 p n u R 0:00 1 x\n", err: "line 1"},
		{name: "two fields short", in: "JOBID PARTITION NAME USER ST TIME NODES NODELIST(REASON)\n5 p n u R 0:00\n", err: "line 2 has 6 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			states, err := ParseSqueueTable([]byte(tt.in))
			if tt.err != "" {
				require.ErrorIs(t, err, scheduler.ErrParse)
				require.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, js := range states {
				got = append(got, strings.Join([]string{string(js.ID), js.Raw, js.Name, js.Reason}, "|"))
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseSacctParsable(t *testing.T) {
	states, err := ParseSacctParsable(adaptertest.Fixture(t, "slurm-local-sacct-P.txt"))
	require.NoError(t, err)
	job := find(t, states, "25")
	require.Equal(t, "fx pipe|name x", job.Name)
	require.Equal(t, "debug", job.Queue)
	require.Equal(t, "JobHeldUser", find(t, states, "17").Reason)

	states, err = ParseSacctParsable(adaptertest.Fixture(t, "slurm-sacct-17.txt"))
	require.NoError(t, err)
	batch := find(t, states, "1873472_168.batch")
	require.Equal(t, 15, batch.Signal)

	_, err = ParseSacctParsable([]byte("123|COMPLETED|0:0\n"))
	require.ErrorIs(t, err, scheduler.ErrParse, "no header")
	_, err = ParseSacctParsable([]byte("JobID|State|ExitCode\n123|COMPLETED\n"))
	require.ErrorIs(t, err, scheduler.ErrParse)
	require.Contains(t, err.Error(), "line 1 has 2 fields")
	states, err = ParseSacctParsable([]byte("\n"))
	require.NoError(t, err)
	require.Empty(t, states)
}

func TestParseSacctColumns(t *testing.T) {
	_, err := ParseSacctColumns([]string{"Elapsed"}, []byte("x\n"))
	require.Error(t, err)

	states, err := ParseSacctColumns([]string{"JobID", "JobName%30", "State"}, []byte("1|a|b|RUNNING\n2||PENDING\n"))
	require.NoError(t, err)
	require.Equal(t, "a|b", states[0].Name)
	require.Equal(t, scheduler.StatusPending, states[1].Status)

	states, err = ParseSacctColumns([]string{"jobid", "exitcode", "state", "ncpus", "elapsed", "totalcpu", "submit", "start", "end", "maxrss", "maxvmsize"},
		adaptertest.Fixture(t, "slurm-sacct-3.txt"))
	require.NoError(t, err)
	require.Equal(t, scheduler.StatusFailed, states[0].Status, "NODE_FAIL")
	require.Equal(t, 1, *states[0].ExitCode)
	require.Equal(t, local("2016-09-23T20:06:24"), states[0].Ended)

	states, err = ParseSacctColumns([]string{"JobID", "AllocNodes", "Cluster", "ExitCode", "Group", "Account", "JobName", "NodeList", "Partition",
		"Priority", "State", "Reason", "ElapsedRaw", "Submit", "Start", "End", "Suspended", "TimelimitRaw", "User", "WorkDir"},
		adaptertest.Fixture(t, "slurm-sacct-13.txt"))
	require.NoError(t, err)
	require.Equal(t, time.Unix(1787127492, 0), states[0].Ended, "epoch times")
	require.Equal(t, "test-user", states[0].User)
	require.Equal(t, "NameExists", states[0].Name)
}

func TestParseSacctTable(t *testing.T) {
	states, err := ParseSacctTable(adaptertest.Fixture(t, "slurm-local-sacct-default.txt"))
	require.NoError(t, err)
	require.Equal(t, "fx pipe|n+", find(t, states, "25").Name, "sacct's cut stays cut")
	require.Equal(t, 3, *find(t, states, "21").ExitCode)

	states, err = ParseSacctTable(adaptertest.Fixture(t, "slurm-sacct-11.txt"))
	require.NoError(t, err)
	require.Equal(t, local("2014-07-03T11:59:01"), find(t, states, "2").Ended)
	require.True(t, find(t, states, "3").Ended.IsZero())

	_, err = ParseSacctTable([]byte("JobID State\n1 RUNNING\n"))
	require.ErrorIs(t, err, scheduler.ErrParse)
	_, err = ParseSacctTable([]byte("Elapsed\n-------\n00:01\n"))
	require.ErrorIs(t, err, scheduler.ErrParse)
	states, err = ParseSacctTable(nil)
	require.NoError(t, err)
	require.Empty(t, states)
}

func TestParseScontrolShowJob(t *testing.T) {
	states, err := ParseScontrolShowJob(adaptertest.Fixture(t, "slurm-local-scontrol.txt"))
	require.NoError(t, err)
	j := find(t, states, "25")
	require.Equal(t, "fx pipe|name x", j.Name)
	require.Equal(t, "root", j.User)
	require.Equal(t, "debug", j.Queue)
	require.Equal(t, local("2026-11-28T23:03:07"), j.Started)
	require.Equal(t, 0, *j.ExitCode)
	require.Equal(t, "job_requeued_in_held_state", find(t, states, "24").Reason)

	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{name: "no jobs", in: "No jobs in the system\n"},
		{name: "array task", in: "JobId=1081 ArrayJobId=1080 ArrayTaskId=1 JobName=a b=c JobState=RUNNING Reason=None\n",
			want: []string{"1080_1=RUNNING"}},
		{name: "array pending range", in: "JobId=1080 ArrayJobId=1080 ArrayTaskId=5-1024 JobState=PENDING\n",
			want: []string{"1080_[5-1024]=PENDING"}},
		{name: "het component", in: "JobId=94 HetJobId=93 HetJobOffset=1 JobState=COMPLETED ExitCode=0:0\n", want: []string{"93+1=COMPLETED"}},
		{name: "two records multi-line", in: "JobId=1 JobName=x\n   JobState=CANCELLED Reason=None\n\nJobId=2 JobName=y\n   JobState=TIMEOUT\n",
			want: []string{"1=CANCELLED", "2=TIMEOUT"}},
		{name: "no state", in: "JobId=1 JobName=x\n", err: "no JobState"},
		{name: "text before job", in: "hello\nJobId=1 JobState=RUNNING\n", err: "line 1"},
		{name: "key before job", in: "JobState=RUNNING\n", err: "before any JobId"},
		{name: "bad exit code", in: "JobId=1 JobState=FAILED ExitCode=abc\n", err: "exit code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			states, err := ParseScontrolShowJob([]byte(tt.in))
			if tt.err != "" {
				require.ErrorIs(t, err, scheduler.ErrParse)
				require.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, js := range states {
				got = append(got, string(js.ID)+"="+js.Raw)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-28T22:52:49", local("2026-11-28T22:52:49")},
		{"1795906987", time.Unix(1795906987, 0)},
		{"N/A", time.Time{}},
		{"Unknown", time.Time{}},
		{"None", time.Time{}},
		{"NONE", time.Time{}},
		{"INVALID", time.Time{}},
		{"", time.Time{}},
		{"0", time.Time{}},
		{"2026-13-01T00:00:00", time.Time{}},
		{"Tomorr 10:00", time.Time{}},
		{"99999999999999999999", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.True(t, tt.want.Equal(parseTime(tt.in)), "got %v", parseTime(tt.in))
		})
	}
}

// TestParseSqueueIDStateRefusesOtherLines: a third column, a header or a line not starting with an
// id is garbage for the two-column format, reported with its line number, never a job.
func TestParseSqueueIDStateRefusesOtherLines(t *testing.T) {
	for _, in := range []string{"12 R extra\n", "JOBID ST\n12 R\n", "12\n", "12 R\nabc PD\n"} {
		_, err := ParseSqueueIDState([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, "%q", in)
		require.Contains(t, err.Error(), "line ", "%q", in)
	}
	got, err := ParseSqueueIDState([]byte("\n  7 CANCELLED\n8_[1-3] PD\n"))
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, scheduler.StatusCancelled, got[0].Status)
	require.Equal(t, scheduler.JobID("8_[1-3]"), got[1].ID)
	require.Equal(t, scheduler.StatusPending, got[1].Status)
}
