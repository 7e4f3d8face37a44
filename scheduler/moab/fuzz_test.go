package moab

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryhpc/ferry/scheduler"
)

// FuzzParseStatus: no input makes the showq/checkjob parser panic or hang; what it returns has an
// id and a state, and its errors wrap ErrParse.
func FuzzParseStatus(f *testing.F) {
	for _, name := range []string{"showq-xml-emulator.xml", "checkjob-xml-emulator.xml"} {
		b, err := readSample(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("<Data><job JobID=\"1\" State=\"Idle\"/></Data>"))
	m := New(Options{})
	f.Fuzz(func(t *testing.T, in []byte) {
		jobs, err := m.ParseStatus(in)
		if err != nil {
			if !errorsIsParse(err) {
				t.Fatalf("error does not wrap ErrParse: %v", err)
			}
			return
		}
		for _, j := range jobs {
			if j.ID == "" || j.Raw == "" {
				t.Fatalf("job without id or state: %+v", j)
			}
		}
		_, _ = m.ParseSubmit(in)
	})
}

func errorsIsParse(err error) bool { return errors.Is(err, scheduler.ErrParse) }

func readSample(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }
