package config

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fieldPrefix matches the start of one Validate problem: the field it is about.
var fieldPrefix = regexp.MustCompile(`^(agent|pool|poll|stage|limits|credentials)\.[a-z_]+: ` +
	`|^member\[\d+\]\.[a-z_]+: ` +
	`|^identity(\[\d+\]| "(?:[^"\\]|\\.)*")(\.[a-z_]+)*(\.credential\[\d+\](\.[a-z_]+)?)?: `)

// FuzzParse feeds arbitrary text to Parse. Properties: no panic; an error names where the problem
// is (a TOML line or key, the unknown keys, or on every line of a validation error the field); and a
// configuration that is accepted validates again, has every identity's port filled in, and modes
// that mean what they say (the octal value as written, at most 07777).
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../config.example.toml"); err == nil {
		f.Add(string(b))
	}
	f.Add("")
	f.Add("[agent]\nstate_dir = \"/var/lib/ferry\"\n")
	f.Add("[agent]\nstate_dirr = \"/x\"\n[pool]\nmax_session = 3\n")
	f.Add("[pool]\ndial_timeout = \"forever\"\n")
	f.Add("[pool]\nmax_sessions_per_conn = \"ten\"\n")
	f.Add("[stage]\nfile_mode = \"0664\"\ndir_mode = \"2775\"\n")
	f.Add("[stage]\nfile_mode = \"200000000664\"\n")
	f.Add("[poll]\ninterval = \"-1s\"\nmax_interval = \"1ns\"\n")
	f.Add("[[member]]\nname = \"a b\"\nrole = \"king\"\n")
	f.Add("[[identity]]\nname = \"hpc\"\nscheduler = \"slurm\"\nhost = \"login\"\nknown_hosts = \"login ssh-ed25519 AAAA\"\nwork_dir = \"/w\"\n[[identity.credential]]\nuser = \"alice\"\nkey_file = \"/k\"\n")
	f.Add("[[identity]]\nname = \"\\\"q\\\"\"\nport = 99999\n[[identity.credential]]\nuser = \"Bad\"\n")
	f.Add("agent = 1\n")
	f.Add("[agent\n")
	f.Add("x = \"\\u0000\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "line ") || strings.Contains(msg, "(last key ") || strings.HasPrefix(msg, "unknown keys: ") {
				return
			}
			for _, line := range strings.Split(msg, "\n") {
				if !fieldPrefix.MatchString(line) {
					t.Fatalf("error line %q names neither a field nor a line; whole error:\n%s", line, msg)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted, yet Validate fails: %v", err)
		}
		for _, id := range c.Identities {
			if id.Port < 1 || id.Port > 65535 {
				t.Fatalf("identity %q accepted with port %d", id.Name, id.Port)
			}
		}
		for field, s := range map[string]string{"stage.file_mode": c.Stage.FileMode, "stage.dir_mode": c.Stage.DirMode} {
			m, err := ParseMode(s)
			if err != nil {
				t.Fatalf("%s %q accepted but ParseMode fails: %v", field, s, err)
			}
			want, perr := strconv.ParseUint(s, 8, 64)
			if perr != nil || want > 0o7777 || uint64(m) != want {
				t.Fatalf("%s %q accepted as mode %o, but it is %v (%v) in octal: at most 07777 is a mode", field, s, m, want, perr)
			}
		}
	})
}
