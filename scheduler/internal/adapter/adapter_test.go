package adapter

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

func TestEachLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one newline", in: "\n", want: []string{""}},
		{name: "no final newline", in: "a\nb", want: []string{"a", "b"}},
		{name: "final newline", in: "a\nb\n", want: []string{"a", "b"}},
		{name: "blank lines kept", in: "a\n\n\nb\n", want: []string{"a", "", "", "b"}},
		{name: "crlf", in: "a\r\nb\r\n", want: []string{"a", "b"}},
		{name: "only the last cr", in: "a\r\r\n\rb\n", want: []string{"a\r", "\rb"}},
		{name: "blanks kept", in: "  a \t\n", want: []string{"  a \t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, SplitLines([]byte(tt.in)))
			var got []string
			next := 1
			require.NoError(t, EachLine([]byte(tt.in), func(no int, line string) error {
				require.Equal(t, next, no)
				next++
				got = append(got, line)
				return nil
			}))
			require.Equal(t, tt.want, got)
		})
	}
}

func TestEachLineStops(t *testing.T) {
	stop := errors.New("stop")
	var seen []int
	err := EachLine([]byte("a\nb\nc\n"), func(no int, _ string) error {
		seen = append(seen, no)
		if no == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, []int{1, 2}, seen)
}

func TestBound(t *testing.T) {
	long := strings.Repeat("x", 201)
	tests := []struct{ in, want string }{
		{in: "", want: ""},
		{in: "short", want: "short"},
		{in: long[:200], want: long[:200]},
		{in: long, want: long[:200] + "..."},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Bound(tt.in), "len %d", len(tt.in))
	}
}

func TestPredicates(t *testing.T) {
	tests := []struct {
		name  string
		f     func(string) bool
		cases map[string]bool
	}{
		{name: "ValidID", f: ValidID, cases: map[string]bool{
			"": false, "123": true, "1.srv": true, "12[3].pbs": true, "é": true,
			"1 2": false, "1\t2": false, "1\n": false, "a\x00": false, "a\x7f": false, "123;rm -rf": false,
		}},
		{name: "IsDigits", f: IsDigits, cases: map[string]bool{
			"": false, "0": true, "0123": true,
			"12a": false, " 12": false, "-1": false, "\u0661": false, // Arabic-Indic one: not ASCII
		}},
		{name: "HasControl", f: HasControl, cases: map[string]bool{
			"": false, "plain /w": false, "é": false,
			"tab\there": true, "nl\n": true, "nul\x00": true, "del\x7f": true, "esc\x1b": true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for in, want := range tt.cases {
				require.Equal(t, want, tt.f(in), "%q", in)
			}
		})
	}
}

func TestCheckToken(t *testing.T) {
	for _, ok := range []string{"", "a", "run-42:task.7", "A_b", strings.Repeat("x", 128)} {
		require.NoError(t, CheckToken(ok), "%q", ok)
	}
	for _, bad := range []string{" ", "a b", "a,b", "a\"b", "a\nb", "é", strings.Repeat("x", 129)} {
		err := CheckToken(bad)
		require.Error(t, err, "%q", bad)
		require.Contains(t, err.Error(), "must be 1-128 characters from [A-Za-z0-9._:-]")
	}
}

func TestCheckNonNegative(t *testing.T) {
	tests := []struct {
		name string
		r    scheduler.Resources
		want string
	}{
		{name: "zero", r: scheduler.Resources{}},
		{name: "positive", r: scheduler.Resources{CPUs: 1, MemoryMB: 1, Time: time.Second}},
		{name: "cpus", r: scheduler.Resources{CPUs: -1}, want: "cpus -1 is negative"},
		{name: "memory", r: scheduler.Resources{MemoryMB: -2}, want: "memory -2 MB is negative"},
		{name: "time", r: scheduler.Resources{Time: -time.Minute}, want: "time limit -1m0s is negative"},
		{name: "cpus first", r: scheduler.Resources{CPUs: -1, MemoryMB: -1, Time: -1}, want: "cpus -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckNonNegative(tt.r)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestCheckQsubDir(t *testing.T) {
	for _, ok := range []string{"/", "/w", "/scratch/alice/work/12/3456/", "/a,b=c+d@e", "/é"} {
		require.NoError(t, CheckQsubDir(ok, "#PBS -o"), "%q", ok)
	}
	tests := []struct{ dir, want string }{
		{dir: "", want: `task dir "" is not absolute`},
		{dir: "w/x", want: `task dir "w/x" is not absolute`},
		{dir: "/w\nx", want: `task dir "/w\nx" contains a control character`},
		{dir: "/w\tx", want: `task dir "/w\tx" contains a control character`},
	}
	for _, tt := range tests {
		require.EqualError(t, CheckQsubDir(tt.dir, "#PBS -o"), tt.want)
	}
	for _, bad := range []string{"/my work", "/w\u00a0x", `/o"x`, "/o'x", `/a\b`, "/a#b", "/host:x", "/$HOME"} {
		err := CheckQsubDir(bad, "#$ -o")
		require.Error(t, err, "%q", bad)
		require.Contains(t, err.Error(), "which a #$ -o directive cannot carry")
	}
}

func TestScanSubmit(t *testing.T) {
	bare := regexp.MustCompile(`^([0-9]+)$`)
	sentence := regexp.MustCompile(`^job ([0-9]+) submitted$`)
	refusal := func(l string) bool { return strings.HasPrefix(l, "no:") }
	tests := []struct {
		name, in          string
		id, last, refused string
	}{
		{name: "empty", in: ""},
		{name: "blank", in: " \n\t\r\n"},
		{name: "id", in: "12\n", id: "12"},
		{name: "id trimmed", in: "  12 \r\n", id: "12"},
		{name: "second pattern", in: "job 56 submitted\n", id: "56"},
		{name: "banner before", in: "welcome\nno: not this\n34\n", id: "34"},
		{name: "last id wins", in: "12\njob 34 submitted\n\n", id: "34"},
		{name: "id before noise", in: "12\ngoodbye\n", id: "12"},
		{name: "no id", in: "hello\n  world  \n\n", last: "world"},
		{name: "refused", in: "no: first\nno: second\nExiting.\n", last: "Exiting.", refused: "no: first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, last, refused := ScanSubmit([]byte(tt.in), refusal, bare, sentence)
			require.Equal(t, tt.id, id, "id")
			require.Equal(t, tt.last, last, "last")
			require.Equal(t, tt.refused, refused, "refused")
		})
	}
}

func TestCancelVerdict(t *testing.T) {
	cmd := scheduler.Command{Argv: []string{"qdel", "7"}}
	var cmdErr *scheduler.CommandError
	tests := []struct {
		name       string
		tally      CancelTally
		exit       int
		permission bool
		command    bool
	}{
		{name: "exit 0", tally: CancelTally{}, exit: 0},
		{name: "exit 0 with other", tally: CancelTally{Other: true}, exit: 0},
		{name: "gone", tally: CancelTally{Recognised: true}, exit: 1},
		{name: "gone and other", tally: CancelTally{Recognised: true, Other: true}, exit: 1, command: true},
		{name: "silent failure", tally: CancelTally{}, exit: 1, command: true},
		{name: "refused exit 0", tally: CancelTally{Refused: []string{"7"}, Other: true}, exit: 0, permission: true},
		{name: "refused", tally: CancelTally{Refused: []string{"7", ""}}, exit: 1, permission: true},
		{name: "refused and other", tally: CancelTally{Refused: []string{"7"}, Other: true}, exit: 1, permission: true, command: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tally.Verdict("qdel", cmd, scheduler.Result{ExitCode: tt.exit, Stderr: []byte("x")})
			if !tt.permission && !tt.command {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.permission, errors.Is(err, scheduler.ErrPermission), "%v", err)
			require.Equal(t, tt.command, errors.As(err, &cmdErr), "%v", err)
			if tt.permission {
				require.Contains(t, err.Error(), "qdel: permission denied for job "+strings.Join(tt.tally.Refused, ", ")+":")
			}
			if tt.command {
				require.Equal(t, cmd.Argv, cmdErr.Argv)
			}
		})
	}
}

func TestJSONScalar(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{in: `"RUN"`, want: "RUN", ok: true},
		{in: ` "a\"b\u00e9" `, want: `a"bé`, ok: true},
		{in: `""`, want: "", ok: true},
		{in: `12`, want: "12", ok: true},
		{in: `-1.5e3`, want: "-1.5e3", ok: true},
		{in: `true`, want: "true", ok: true},
		{in: `null`, want: "null", ok: true},
		{in: ``},
		{in: `  `},
		{in: `{"a":1}`},
		{in: `[1]`},
		{in: `"unterminated`},
	}
	for _, tt := range tests {
		got, ok := JSONScalar(json.RawMessage(tt.in))
		require.Equal(t, tt.ok, ok, "%q", tt.in)
		require.Equal(t, tt.want, got, "%q", tt.in)
	}
}
