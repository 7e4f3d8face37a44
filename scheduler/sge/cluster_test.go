package sge

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// clusterCapture reads a capture of testdata/cluster (see its README.md).
// clusterCapture returns testdata/cluster/NAME, output captured on the local test cluster.
func clusterCapture(t *testing.T, name string) []byte {
	t.Helper()
	return adaptertest.Fixture(t, filepath.Join("cluster", name))
}

// TestClusterQacct parses real qacct -j output of Grid Engine 8.1.9: the records, then the usage
// summary that ends the output, which must not be read as a record.
func TestClusterQacct(t *testing.T) {
	n := func(i int) *int { return &i }
	type want struct {
		id       scheduler.JobID
		raw      string
		status   scheduler.Status
		exit     *int
		signal   int
		reasonIn string
	}
	for _, c := range []struct {
		file string
		want []want
	}{
		{"qacct-o-user-j.txt", []want{
			{"1", "failed 0", scheduler.StatusCompleted, n(0), 0, ""},
			{"4", "failed 0", scheduler.StatusCompleted, n(3), 0, ""},
			// qdel of a running job: SIGKILL, no deleted_by; failed is final, the agent knows
			// it asked for the cancel.
			{"6", "failed 100", scheduler.StatusFailed, n(137), 9, "assumedly after job"},
			{"7", "failed 37", scheduler.StatusTimeout, n(137), 9, "h_rt"},
			{"14", "failed 100", scheduler.StatusFailed, n(137), 9, "assumedly after job"},
		}},
		{"qacct-o-user-j-nojobs.txt", nil},
		{"qacct-d-j-total.txt", []want{
			{"1", "failed 0", scheduler.StatusCompleted, n(0), 0, ""},
			{"2", "failed 0", scheduler.StatusCompleted, n(3), 0, ""},
			{"3", "failed 0", scheduler.StatusCompleted, n(0), 0, ""},
			{"4", "failed 0", scheduler.StatusCompleted, n(3), 0, ""},
			{"5", "failed 100", scheduler.StatusFailed, n(137), 9, "assumedly after job"},
			{"6", "failed 100", scheduler.StatusFailed, n(137), 9, "assumedly after job"},
			{"7", "failed 37", scheduler.StatusTimeout, n(137), 9, "h_rt"},
			{"14", "failed 100", scheduler.StatusFailed, n(137), 9, "assumedly after job"},
		}},
	} {
		t.Run(c.file, func(t *testing.T) {
			states, err := New(Options{}).ParseAccounting(clusterCapture(t, c.file))
			require.NoError(t, err)
			require.Len(t, states, len(c.want))
			for i, w := range c.want {
				js := states[i]
				require.Equal(t, w.id, js.ID)
				require.Equal(t, w.raw, js.Raw, "job %s", js.ID)
				require.Equal(t, w.status, js.Status, "job %s", js.ID)
				require.True(t, js.Status.Final(), "job %s: accounting only knows ended jobs", js.ID)
				require.Equal(t, w.exit, js.ExitCode, "job %s", js.ID)
				require.Equal(t, w.signal, js.Signal, "job %s", js.ID)
				require.Contains(t, js.Reason, w.reasonIn, "job %s", js.ID)
				require.NotEmpty(t, js.User, "job %s", js.ID)
				require.Equal(t, "all.q", js.Queue, "job %s", js.ID)
				require.False(t, js.Ended.IsZero(), "job %s", js.ID)
				require.False(t, js.Started.IsZero(), "job %s", js.ID)
			}
		})
	}
	states, err := ParseQacct(clusterCapture(t, "qacct-o-user-j.txt"))
	require.NoError(t, err)
	require.Equal(t, "alice", states[0].User)
	require.Equal(t, "st_sge_alice_ok", states[0].Name)
	require.Equal(t, adaptertest.Local("2026-11-29 00:17:22"), states[0].Started)
}

// TestQacctSummaryHeader tells the summary's first line from record lines.
func TestQacctSummaryHeader(t *testing.T) {
	for _, l := range []string{
		"Total System Usage",
		"OWNER     WALLCLOCK         UTIME         STIME           CPU             MEMORY                 IO                IOW",
		"GROUP     WALLCLOCK         UTIME         STIME           CPU             MEMORY                 IO                IOW",
		"WALLCLOCK         UTIME         STIME           CPU             MEMORY                 IO                IOW",
	} {
		require.True(t, qacctSummaryHeader(l), l)
	}
	for _, l := range []string{"owner        alice", "ru_wallclock 1s", "jobname WALLCLOCK UTIME", "jobnumber    7", ""} {
		require.False(t, qacctSummaryHeader(l), l)
	}
}

// TestClusterLookup finds jobs by their token in real qstat -j output (the lookup's second
// command), including a pending array job; a token no job carries, or one that is only a prefix of
// a real one, is not found.
func TestClusterLookup(t *testing.T) {
	s := New(Options{})
	out := clusterCapture(t, "qstat-j-lookup.txt")
	for token, want := range map[string]scheduler.JobID{"tok123": "37", "tok456": "38", "tok45": "", "tok1234": "", "nothing": ""} {
		id, ok, err := s.ParseLookup(out, token)
		require.NoError(t, err)
		require.Equal(t, want != "", ok, token)
		require.Equal(t, want, id, token)
	}
	id, ok, err := s.ParseLookup(nil, "tok123")
	require.NoError(t, err)
	require.False(t, ok, "no job at all: the lookup prints nothing")
	require.Empty(t, id)
}

// TestParseLookupEdges: the earliest of two jobs with one token wins, a context list is split on
// commas, and garbage where qstat -j prints job numbers is an error, never "not found".
func TestParseLookupEdges(t *testing.T) {
	s := New(Options{})
	two := "job_number:  90\ncontext:  A=1,FERRY_TOKEN=t\n=====\njob_number: 12\ncontext: FERRY_TOKEN=t,B=2\n"
	id, ok, err := s.ParseLookup([]byte(two), "t")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, scheduler.JobID("12"), id)
	for _, bad := range []string{"context: FERRY_TOKEN=t\n", "job_number: x1\ncontext: FERRY_TOKEN=t\n"} {
		_, _, err := s.ParseLookup([]byte(bad), "t")
		require.ErrorIs(t, err, scheduler.ErrParse, bad)
	}
}
