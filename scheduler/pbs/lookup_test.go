package pbs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

// withToken returns a real capture with one variable's name and value replaced by FERRY_TOKEN and
// token, as a job Render submitted would carry it among the others.
func withToken(t *testing.T, file, old, repl string) []byte {
	t.Helper()
	b := string(adaptertest.Fixture(t, file))
	require.Contains(t, b, old)
	return []byte(strings.Replace(b, old, repl, 1))
}

// TestProParseLookup reads real qstat -f -F json (its PBS_O_LOGNAME turned into the token), valid
// JSON and, with the repairs and the line-by-line fallback, JSON that does not decode.
func TestProParseLookup(t *testing.T) {
	p := NewPro(Options{})
	out := withToken(t, "pbspro-qstat-json-1.json", `"PBS_O_LOGNAME":"pbsuser"`, `"FERRY_TOKEN":"tok-1"`)
	for _, c := range []struct {
		name string
		out  []byte
	}{{"valid", out}, {"broken", []byte(strings.Replace(string(out), `"Job_Name":`, `"Job_Name":"x" "y",`, 1))}} {
		id, ok, err := p.ParseLookup(c.out, "tok-1")
		require.NoError(t, err, c.name)
		require.True(t, ok, c.name)
		require.Equal(t, scheduler.JobID("157.pbs"), id, c.name)
		_, ok, err = p.ParseLookup(c.out, "tok-")
		require.NoError(t, err, c.name)
		require.False(t, ok, "%s: a prefix of the token is another token", c.name)
	}
	_, ok, err := p.ParseLookup(nil, "tok-1")
	require.NoError(t, err)
	require.False(t, ok, "no job: qselect listed none and qstat did not run")
	_, _, err = p.ParseLookup([]byte("garbage {\n  \"FERRY_TOKEN\":\"tok-1\"\n"), "tok-1")
	require.ErrorIs(t, err, scheduler.ErrParse, "a token outside any job")
}

// TestTorqueParseLookup reads real Torque qstat -f whose Variable_List qstat wrapped over several
// lines (the token is on a continuation line).
func TestTorqueParseLookup(t *testing.T) {
	tq := NewTorque(Options{})
	out := withToken(t, "torque-qstat-f-5.txt", "PBS_O_LOGNAME=creisle", "FERRY_TOKEN=tok-2")
	id, ok, err := tq.ParseLookup(out, "tok-2")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, scheduler.JobID("48[1].torque01.bcgsc.ca"), id)
	_, ok, err = tq.ParseLookup(adaptertest.Fixture(t, "torque-qstat-f-5.txt"), "tok-2")
	require.NoError(t, err)
	require.False(t, ok)
	_, _, err = tq.ParseLookup([]byte("not qstat\n"), "tok-2")
	require.ErrorIs(t, err, scheduler.ErrParse)
}

// TestCheckLookup: an id that ended between qselect and qstat is not a failure; a qselect that
// failed is.
func TestCheckLookup(t *testing.T) {
	p := NewPro(Options{})
	require.NoError(t, p.CheckLookup(scheduler.Result{ExitCode: 153, Stderr: []byte("qstat: Unknown Job Id 12.srv\n")}))
	require.Error(t, p.CheckLookup(scheduler.Result{ExitCode: 1, Stderr: []byte("qselect: cannot connect to server srv (errno=111)\n")}))
}
