package scheduler

import (
	"context"
	"math/rand"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// quoteCases are adversarial arguments with the exact quoted form Quote must produce.
var quoteCases = []struct {
	name, in, want string
}{
	{"plain", "abc", "abc"},
	{"safe punctuation", "a-b_c.d/e,f:g=h+i@j%k", "a-b_c.d/e,f:g=h+i@j%k"},
	{"empty", "", "''"},
	{"single quote", "it's", `'it'\''s'`},
	{"only quote", "'", `''\'''`},
	{"two quotes", "''", `''\'''\'''`},
	{"command substitution", "$(rm -rf ~)", "'$(rm -rf ~)'"},
	{"backticks", "`id`", "'`id`'"},
	{"variable", "$HOME", "'$HOME'"},
	{"semicolon", "a;b", "'a;b'"},
	{"and", "a && b", "'a && b'"},
	{"pipe", "a|b", "'a|b'"},
	{"glob", "*", "'*'"},
	{"glob in word", "a*.txt", "'a*.txt'"},
	{"question", "a?", "'a?'"},
	{"brackets", "[ab]", "'[ab]'"},
	{"braces", "{a,b}", "'{a,b}'"},
	{"tilde", "~root", "'~root'"},
	{"space", "a b", "'a b'"},
	{"leading dash", "-rf", "-rf"},
	{"leading dashes with space", "--name=a b", "'--name=a b'"},
	{"redirections", "a>b<c", "'a>b<c'"},
	{"hash", "#comment", "'#comment'"},
	{"unicode", "é日本", "'é日本'"},
	{"tab", "a\tb", "'a\tb'"},
	{"backslash", `a\b`, `'a\b'`},
	{"trailing backslash", `a\`, `'a\'`},
	{"double quote", `say "hi"`, `'say "hi"'`},
	{"dollar single quote", `$'x'`, `'$'\''x'\'''`},
	{"ampersand", "a&", "'a&'"},
	{"parens", "(a)", "'(a)'"},
}

func TestQuote(t *testing.T) {
	for _, tt := range quoteCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Quote(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in, shellEcho(t, "/bin/sh", got), "sh must read the quoted form back")
		})
	}
}

func TestQuoteRefusals(t *testing.T) {
	for _, in := range []string{"a\nb", "\n", "a\rb", "a\x00b", "!", "a!b", "!!", "echo hi!"} {
		t.Run(strings.NewReplacer("\n", `\n`, "\r", `\r`, "\x00", `\0`).Replace(in), func(t *testing.T) {
			got, err := Quote(in)
			require.ErrorIs(t, err, ErrUnquotable)
			require.Empty(t, got)
			_, err = CommandLine(Command{Argv: []string{"printf", in}})
			require.ErrorIs(t, err, ErrUnquotable)
			_, err = CommandLine(Command{Argv: []string{"true"}, Dir: "/tmp/" + in})
			require.ErrorIs(t, err, ErrUnquotable)
		})
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name string
		c    Command
		want string
	}{
		{"argv", Command{Argv: []string{"squeue", "--user=alice", "--format=%i|%t"}}, "squeue --user=alice '--format=%i|%t'"},
		{"dir", Command{Argv: []string{"sbatch", ".command.run"}, Dir: "/w/a b"}, "cd '/w/a b' && sbatch .command.run"},
		{"empty arg", Command{Argv: []string{"printf", ""}}, "printf ''"},
		{"leading dash arg", Command{Argv: []string{"scancel", "--", "-1"}}, "scancel -- -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CommandLine(tt.c)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := CommandLine(Command{})
	require.Error(t, err)
}

// TestCommandLineRunsInDir checks that the cd prefix reaches a directory with awkward characters.
func TestCommandLineRunsInDir(t *testing.T) {
	dir := t.TempDir() + "/a b 'c' $d `e` ;f"
	require.NoError(t, exec.Command("mkdir", "-p", dir).Run())
	line, err := CommandLine(Command{Argv: []string{"pwd"}, Dir: dir})
	require.NoError(t, err)
	out, err := exec.Command("/bin/sh", "-c", line).Output()
	require.NoError(t, err)
	require.Equal(t, dir+"\n", string(out))
}

// quoteAlphabet mixes every character a shell treats specially with plain ones and multi-byte runes.
var quoteAlphabet = []rune("ab Z09'\"\\`$()[]{}<>|&;*?~#=%+,-./:@^\t é日\u00a0\u2028")

func randomString(rng *rand.Rand, max int) string {
	n := rng.Intn(max + 1)
	var b strings.Builder
	for i := 0; i < n; i++ {
		if rng.Intn(20) == 0 {
			b.WriteByte(byte(1 + rng.Intn(0x7e))) // any ASCII byte except NUL
			continue
		}
		b.WriteRune(quoteAlphabet[rng.Intn(len(quoteAlphabet))])
	}
	return b.String()
}

// TestQuoteProperty runs random strings through /bin/sh (and tcsh, when installed) and checks that
// every string Quote accepts comes back byte for byte. The shells are exec'ed directly with the
// command line as their -c argument, as sshd does; no other shell is involved.
func TestQuoteProperty(t *testing.T) {
	shells := []string{"/bin/sh"}
	for _, sh := range []string{"bash", "dash", "tcsh"} {
		if p, err := exec.LookPath(sh); err == nil {
			shells = append(shells, p)
		} else if sh == "tcsh" {
			t.Logf("tcsh not installed: the tcsh half of this property is not checked (install tcsh to run it)")
		}
	}
	rng := rand.New(rand.NewSource(20261128))
	const n = 300
	var accepted []string
	for len(accepted) < n {
		s := randomString(rng, 16)
		_, err := Quote(s)
		if err != nil {
			require.ErrorIs(t, err, ErrUnquotable)
			require.True(t, strings.ContainsAny(s, "\x00\n\r!"), "refused %q: %v", s, err)
			continue
		}
		accepted = append(accepted, s)
	}
	for _, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			// One shell call per batch of arguments keeps the test fast: printf prints each on its line.
			for i := 0; i < len(accepted); i += 50 {
				batch := accepted[i:min(i+50, len(accepted))]
				line, err := CommandLine(Command{Argv: append([]string{"printf", `%s\n`}, batch...)})
				require.NoError(t, err)
				got := runShell(t, sh, line)
				require.Equal(t, strings.Join(batch, "\n")+"\n", got, "command line %q", line)
			}
		})
	}
}

func TestQuoteTcsh(t *testing.T) {
	tcsh, err := exec.LookPath("tcsh")
	if err != nil {
		t.Skip("tcsh is not installed: install it (apt-get install tcsh) to check quoting for csh-family login shells")
	}
	for _, tt := range quoteCases {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.in, shellEcho(t, tcsh, tt.want))
		})
	}
}

func FuzzQuote(f *testing.F) {
	for _, c := range quoteCases {
		f.Add(c.in)
	}
	f.Add("a\nb")
	f.Add("!")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Quote(s)
		if err != nil {
			if !strings.ContainsAny(s, "\x00\n\r!") {
				t.Fatalf("Quote(%q) refused: %v", s, err)
			}
			return
		}
		if strings.ContainsAny(s, "\x00\n\r!") {
			t.Fatalf("Quote(%q) accepted %q", s, q)
		}
		if got := shellEcho(t, "/bin/sh", q); got != s {
			t.Fatalf("sh read %q back as %q (quoted %q)", s, got, q)
		}
	})
}

// shellEcho runs printf '%s' QUOTED through shell -c and returns what it printed.
func shellEcho(t testing.TB, shell, quoted string) string {
	t.Helper()
	out := runShell(t, shell, "printf '%s' "+quoted)
	return out
}

func runShell(t testing.TB, shell, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, "-c", line)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent"}
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s -c %q: %v: %s", shell, line, err, stderr)
	}
	return string(out)
}
