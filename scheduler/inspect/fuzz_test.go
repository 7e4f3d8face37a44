package inspect

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxSeed leaves the largest fixtures (a 0.9 MB qstat -F -xml) out of the seed corpus: every
// execution runs Main ten times, and the fuzzer mutates small inputs better.
const maxSeed = 32 << 10

// FuzzMainAuto feeds any input to parse with --format auto for every scheduler, as status and as
// submit output. Main must not panic, must exit 0 or 1, and must keep its promises either way:
// exit 0 prints one line of well-formed JSON with an id (and a state and a Ferry status for each
// job) and nothing on stderr; exit 1 prints nothing on stdout and one message on stderr that says
// which command failed. The seed corpus is every fixture of the four adapter packages.
//
//	go test -run='^$' -fuzz='^FuzzMainAuto$' -fuzztime=60s -fuzzminimizetime=2s ./scheduler/inspect/
func FuzzMainAuto(f *testing.F) {
	for _, dir := range manifestDirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || e.Name() == "MANIFEST.tsv" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			if len(b) <= maxSeed {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(qacctSample))
	f.Add([]byte(bhistSample))
	f.Add([]byte("101|RUN|normal|alice|-|-|-|Jun 14 10:00|Jun 14 10:05 L|-|nf-a\n"))

	statuses := map[string]bool{
		"pending": true, "held": true, "running": true, "completed": true,
		"failed": true, "cancelled": true, "timeout": true, "unknown": true,
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, kind := range Kinds {
			for _, output := range []string{"status", "submit"} {
				var stdout, stderr bytes.Buffer
				code := Main([]string{"parse", "--scheduler", kind, "--output", output}, bytes.NewReader(in), &stdout, &stderr)
				switch code {
				case 0:
					if stderr.Len() != 0 {
						t.Fatalf("%s %s: exit 0 with stderr %q", kind, output, stderr.String())
					}
					line := stdout.String()
					if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
						t.Fatalf("%s %s: stdout is not one line: %q", kind, output, line)
					}
					if output == "submit" {
						var s submitJSON
						if err := json.Unmarshal(stdout.Bytes(), &s); err != nil || s.ID == "" {
							t.Fatalf("%s submit: bad stdout %q (%v)", kind, line, err)
						}
						continue
					}
					var s statusJSON
					if err := json.Unmarshal(stdout.Bytes(), &s); err != nil || s.Jobs == nil {
						t.Fatalf("%s status: bad stdout %q (%v)", kind, line, err)
					}
					for _, j := range s.Jobs {
						if j.ID == "" || j.State == "" || !statuses[j.Status] {
							t.Fatalf("%s status: bad job %+v in %q", kind, j, line)
						}
					}
				case 1:
					if stdout.Len() != 0 {
						t.Fatalf("%s %s: exit 1 with stdout %q", kind, output, stdout.String())
					}
					msg := stderr.String()
					if !strings.HasPrefix(msg, "ferry scheduler parse: ") || !strings.HasSuffix(msg, "\n") {
						t.Fatalf("%s %s: bad error message %q", kind, output, msg)
					}
				default:
					t.Fatalf("%s %s: exit %d (stderr %q)", kind, output, code, stderr.String())
				}
			}
		}
	})
}
