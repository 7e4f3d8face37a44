package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("../../config.example.toml")
	require.NoError(t, err)
	d := Default()
	// Every default written in the example is the code's default.
	require.Equal(t, d.Agent, c.Agent)
	require.Equal(t, d.Pool, c.Pool)
	require.Equal(t, d.Poll, c.Poll)
	require.Equal(t, d.Stage, c.Stage)
	require.Equal(t, d.Web, c.Web)
	require.Len(t, c.Identities, 1)
	require.Equal(t, 22, c.Identities[0].Port)
}

func TestUnknownKeysAllListed(t *testing.T) {
	_, err := Parse("[agent]\nstate_dirr = \"/x\"\n[pool]\nmax_session = 3\n")
	require.ErrorContains(t, err, "agent.state_dirr")
	require.ErrorContains(t, err, "pool.max_session")
}

func TestValidateReportsEveryProblem(t *testing.T) {
	text := `
[agent]
state_dir = "relative"
log_level = "loud"
[pool]
max_sessions_per_conn = 0
dial_timeout = "-1s"
[stage]
file_mode = "0999"
[[identity]]
name = "bad name!"
scheduler = "condor"
host = "bad_host"
port = 70000
work_dir = "rel"
  [[identity.credential]]
  user = "-alice"
  [[identity.credential]]
  user = "-alice"
  key_file = "/k"
  passphrase_file = "/p"
  passphrase_env = "P"
`
	_, err := Parse(text)
	require.Error(t, err)
	for _, want := range []string{
		"agent.state_dir", "agent.log_level", "pool.max_sessions_per_conn", "pool.dial_timeout", "stage.file_mode",
		".name: must be 1-64", ".scheduler: must be one of", ".host: must be a hostname", ".port: must be 1-65535",
		".known_hosts: must pin", ".work_dir: must be an absolute", "credential[0].user: \"-alice\": invalid username: it starts with '-'",
		"credential[0].key_file: is required", "credential[1].user: duplicate", "set passphrase_file or passphrase_env, not both",
	} {
		require.Contains(t, err.Error(), want)
	}
}

func TestBadDuration(t *testing.T) {
	_, err := Parse("[poll]\ninterval = \"5 seconds\"\n")
	require.ErrorContains(t, err, `invalid duration "5 seconds"`)
}

func TestHosts(t *testing.T) {
	for h, ok := range map[string]bool{
		"login.example.org": true, "127.0.0.1": true, "::1": true, "fe80::1": true, "a": true,
		"": false, "-bad.org": false, "bad_host": false, "a..b": false, "host;rm": false, strings.Repeat("a", 64) + ".org": false,
	} {
		require.Equal(t, ok, ValidHost(h), h)
	}
}

func TestDurationsDecode(t *testing.T) {
	c, err := Parse("[poll]\ninterval = \"750ms\"\n")
	require.NoError(t, err)
	require.Equal(t, 750*time.Millisecond, c.Poll.Interval.Duration)
}

// TestRepoTestdataConfigs loads the repo-level configs in testdata/config: the minimal one loads,
// and each invalid one reports every message its "# want:" lines name.
func TestRepoTestdataConfigs(t *testing.T) {
	c, err := Load("../../testdata/config/minimal.toml")
	require.NoError(t, err)
	require.Len(t, c.Identities, 1)
	require.Equal(t, Default().Pool, c.Pool, "what the file leaves out takes its default")

	w, err := Load("../../testdata/config/web.toml")
	require.NoError(t, err)
	require.Equal(t, "https://ferry.example.org", w.WebURL(), "the public URL, without its trailing slash")
	w.Web.PublicURL = ""
	require.Equal(t, "http://127.0.0.1:8443", w.WebURL(), "derived from listen and plain_http")

	sh, err := Load("../../testdata/config/shared.toml")
	require.NoError(t, err)
	require.True(t, sh.Shared())
	_, err = sh.StoreDSN()
	require.ErrorContains(t, err, "FERRY_TEST_DSN is empty or not set", "a DSN variable that is not set is named")
	t.Setenv("FERRY_TEST_DSN", "postgres://ferry@db.example.org/ferry")
	dsn, err := sh.StoreDSN()
	require.NoError(t, err)
	require.Equal(t, "postgres://ferry@db.example.org/ferry", dsn)
	require.Equal(t, "agent-a", sh.LeaseName())
	require.False(t, c.Shared(), "bbolt is the default")
	require.Equal(t, "bbolt", c.Store.Backend)

	files, err := filepath.Glob("../../testdata/config/invalid/*.toml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			var wants []string
			for _, line := range strings.Split(string(b), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			require.NotEmpty(t, wants, "an invalid config says what it must report")
			_, err = Load(f)
			require.Error(t, err)
			for _, w := range wants {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// TestSchedulerAliases: the provider names other platforms use load as Ferry's kinds, in any
// case; an unknown name is refused with the list of kinds and aliases.
func TestSchedulerAliases(t *testing.T) {
	b, err := os.ReadFile("../../testdata/config/minimal.toml")
	require.NoError(t, err)
	for alias, kind := range map[string]string{"altair": "pbspro", "UGE": "sge", "Slurm": "slurm", "lsf": "lsf"} {
		c, err := Parse(strings.Replace(string(b), `scheduler = "slurm"`, `scheduler = "`+alias+`"`, 1))
		require.NoError(t, err, alias)
		require.Equal(t, kind, c.Identities[0].Scheduler, alias)
	}
	_, err = Parse(strings.Replace(string(b), `scheduler = "slurm"`, `scheduler = "pbs"`, 1))
	require.ErrorContains(t, err, `got "pbs"`)
	require.ErrorContains(t, err, "uge (= sge)")
}
