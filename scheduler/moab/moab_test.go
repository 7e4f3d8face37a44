package moab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// The samples are the emulator's, in the documented formats: see testdata/README.md.

func TestParseSubmit(t *testing.T) {
	m := New(Options{})
	for in, want := range map[string]string{"\n67\n": "67", "Moab.123\n": "Moab.123", "warning: x\n\n12\n": "12"} {
		id, err := m.ParseSubmit([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Equal(t, scheduler.JobID(want), id)
	}
	_, err := m.ParseSubmit([]byte("ERROR:  cannot submit job - invalid class 'nosuch'\n"))
	require.ErrorIs(t, err, scheduler.ErrSubmitRejected)
	for _, in := range []string{"", "\n\n", "submitted\n", "Moab.\n"} {
		_, err := m.ParseSubmit([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, "%q", in)
	}
}

func TestParseStatus(t *testing.T) {
	m := New(Options{})
	got, err := m.ParseStatus(sample(t, "showq-xml-emulator.xml"))
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, scheduler.JobID("67"), got[0].ID)
	require.Equal(t, scheduler.StatusRunning, got[0].Status)
	require.Equal(t, "mtest", got[0].Name)
	require.Equal(t, "workq", got[0].Queue)
	require.False(t, got[0].Started.IsZero())
	require.Equal(t, scheduler.StatusPending, got[1].Status)
	require.True(t, got[1].Started.IsZero())
	require.Equal(t, scheduler.StatusHeld, got[2].Status)
	require.Equal(t, "User", got[2].Reason)
	none, err := m.ParseStatus([]byte(`<Data><Object>queue</Object><queue count="0" option="active"></queue></Data>`))
	require.NoError(t, err)
	require.Empty(t, none)
	empty, err := m.ParseStatus(nil)
	require.NoError(t, err)
	require.Empty(t, empty)
}

func TestParseAccounting(t *testing.T) {
	m := New(Options{})
	got, err := m.ParseAccounting(sample(t, "checkjob-xml-emulator.xml"))
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, scheduler.StatusCompleted, got[0].Status)
	require.NotNil(t, got[0].ExitCode)
	require.Equal(t, 3, *got[0].ExitCode)
	require.Equal(t, scheduler.StatusCancelled, got[1].Status)
	require.Nil(t, got[1].ExitCode)
	require.Equal(t, scheduler.StatusTimeout, got[2].Status, "Removed with Torque's -11: the walltime")
	require.False(t, got[2].Ended.IsZero())
}

func TestParseGarbage(t *testing.T) {
	m := New(Options{})
	for _, in := range []string{"job 12 is running\n", "<Data><job State=\"Running\"></job></Data>", "<Data><queue><job JobID=\"1\"", "<html></html>"} {
		_, err := m.ParseStatus([]byte(in))
		require.ErrorIs(t, err, scheduler.ErrParse, "%q", in)
	}
	js, err := m.ParseStatus([]byte(`<Data><job JobID="5" State="Frobnicated"></job></Data>`))
	require.NoError(t, err)
	require.Equal(t, scheduler.StatusUnknown, js[0].Status, "an undocumented state is unknown, not an error")
}

func TestChecks(t *testing.T) {
	m := New(Options{})
	ids := []scheduler.JobID{"12"}
	require.NoError(t, m.CheckCancel(ids, scheduler.Result{Stdout: []byte("job '12' cancelled\n")}))
	require.NoError(t, m.CheckCancel(ids, scheduler.Result{ExitCode: 1, Stderr: []byte("ERROR:  job '12' has already completed\n")}))
	require.NoError(t, m.CheckCancel(ids, scheduler.Result{ExitCode: 1, Stderr: []byte("ERROR:  cannot locate job '12'\n")}))
	err := m.CheckCancel(ids, scheduler.Result{ExitCode: 1, Stderr: []byte("ERROR:  user 'bob' is not authorized to cancel job '12'\n")})
	require.ErrorIs(t, err, scheduler.ErrPermission)
	require.Error(t, m.CheckCancel(ids, scheduler.Result{ExitCode: 1, Stderr: []byte("ERROR:  cannot connect to Moab server\n")}))
	require.NoError(t, m.CheckStatus(ids, scheduler.Result{ExitCode: 1, Stderr: []byte("ERROR:  cannot locate job '12'\n")}))
	require.Error(t, m.CheckStatus(ids, scheduler.Result{ExitCode: 1, Stderr: []byte("ERROR:  lost connection to server\n")}))
}

// TestCommands: the argv Ferry sends; ids and users travel as arguments, never inside a script.
func TestCommands(t *testing.T) {
	m := New(Options{CommandDir: "/opt/moab/bin"})
	require.Equal(t, []string{"/opt/moab/bin/showq", "--xml", "-w", "user=john.smith"}, m.StatusCommand("john.smith", nil).Argv)
	c := m.CancelCommand([]scheduler.JobID{"1", "2"})
	require.Equal(t, []string{"/bin/sh", "-c", eachScript, "ferry-mjobctl", "/opt/moab/bin/mjobctl", "-c", "1", "2"}, c.Argv)
	c = m.AccountingCommand("alice", []scheduler.JobID{"3"})
	require.Equal(t, "/opt/moab/bin/checkjob", c.Argv[4])
	require.Equal(t, []string{"/opt/moab/bin/msub", scheduler.RunFile}, m.SubmitCommand(scheduler.JobSpec{Dir: "/w"}).Argv)
	script, err := m.Render(scheduler.JobSpec{Name: "t", Dir: "/w/t", Token: "tok"})
	require.NoError(t, err)
	require.Contains(t, string(script), "#PBS -v FERRY_TOKEN=tok")
	require.Contains(t, string(script), "ferry_job_id=${MOAB_JOBID:-}")
}

// TestParseLookup: the resource manager's qstat -f, its job number as Moab's id.
func TestParseLookup(t *testing.T) {
	m := New(Options{})
	out := "Job Id: 67.ferrypbs\n    Job_Name = mtest\n    job_state = R\n    Variable_List = PBS_O_HOME=/home/alice,FERRY_TOKEN=mtok1\n"
	id, ok, err := m.ParseLookup([]byte(out), "mtok1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, scheduler.JobID("67"), id)
	_, ok, err = m.ParseLookup([]byte(strings.Replace(out, "mtok1", "other", 1)), "mtok1")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestStates(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range States {
		require.False(t, seen[s.Code], "duplicate %s", s.Code)
		seen[s.Code] = true
		require.Equal(t, s.Status, StateStatus(strings.ToUpper(s.Code)))
	}
}
