package inspect

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/lsf"
	"github.com/ferryhpc/ferry/scheduler/moab"
	"github.com/ferryhpc/ferry/scheduler/pbs"
	"github.com/ferryhpc/ferry/scheduler/sge"
	"github.com/ferryhpc/ferry/scheduler/slurm"
)

// The documentation's tables and command listings are generated from the code that uses them, so
// they cannot drift from it: the tests below regenerate each block between its markers
//
//	<!-- BEGIN GENERATED name: ... -->
//	...
//	<!-- END GENERATED name -->
//
// and fail when the file differs. Rewrite the files with:
//
//	go test ./scheduler/inspect/ -run 'TestDocs' -update
var update = flag.Bool("update", false, "rewrite the generated blocks of docs/schedulers.md and scheduler/README.md")

const (
	schedulersDoc = "../../docs/schedulers.md"
	readmeDoc     = "../README.md"
)

// sourceSlurm is where Slurm documents its states (see /work/shared/fixtures/STATES.md); the slurm
// package's table has no Source column because all its rows share this one.
const sourceSlurm = "squeue(1) \"JOB STATE CODES\" (SchedMD/slurm doc/man/man1/squeue.1)"

// stateRow is one row of the state table.
type stateRow struct {
	scheduler, state, status, meaning, source string
}

// stateRows lists every state of every scheduler from the packages' exported tables.
func stateRows() []stateRow {
	var rows []stateRow
	for _, s := range slurm.States {
		rows = append(rows, stateRow{"Slurm", "`" + s.Code + "` `" + s.Name + "`", string(s.Status), s.Meaning, sourceSlurm})
	}
	for _, s := range pbs.ProStates {
		rows = append(rows, stateRow{"PBS Pro", "`" + s.Code + "`", string(s.Status), s.Meaning, s.Source})
	}
	for _, s := range pbs.TorqueStates {
		rows = append(rows, stateRow{"Torque", "`" + s.Code + "`", string(s.Status), s.Meaning, s.Source})
	}
	for _, s := range lsf.States {
		rows = append(rows, stateRow{"LSF", "`" + s.Code + "`", string(s.Status), s.Meaning, s.Source})
	}
	for _, s := range sge.States {
		rows = append(rows, stateRow{"Grid Engine", "`" + s.Code + "`", string(s.Status), s.Meaning, s.Source})
	}
	for _, s := range moab.States {
		rows = append(rows, stateRow{"Moab", "`" + s.Code + "`", string(s.Status), s.Meaning, s.Source})
	}
	return rows
}

// cell escapes a table cell for Markdown.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

func statesTable() string {
	var b strings.Builder
	b.WriteString("| Scheduler | State as printed | Ferry status | Meaning | Source |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range stateRows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.scheduler, r.state, r.status, cell(r.meaning), cell(r.source))
	}
	return b.String()
}

// exampleSpec is the task the generated directive listings are rendered for.
var exampleSpec = scheduler.JobSpec{
	Name:  "align sample (1)",
	Dir:   "/home/alice/work/3f/2a",
	Token: "tok-7f3a",
	Resources: scheduler.Resources{
		CPUs: 4, MemoryMB: 8192, Time: 2*time.Hour + 30*time.Minute, Queue: "short", Account: "proj42",
	},
}

// adapters are the adapters with their default options, with an extra option each to show where
// Resources.Extra goes.
var adapters = []struct {
	kind, title, prefix, extra string
	a                          scheduler.Scheduler
}{
	{"slurm", "Slurm", "#SBATCH ", "--qos=long", slurm.New(slurm.Options{})},
	{"pbspro", "PBS Pro", "#PBS ", "-l place=scatter", pbs.NewPro(pbs.Options{})},
	{"torque", "Torque", "#PBS ", "-l gres=gpu:1", pbs.NewTorque(pbs.Options{})},
	{"lsf", "LSF", "#BSUB ", "-app big", lsf.New(lsf.Options{})},
	{"sge", "Grid Engine", "#$ ", "-l gpu=1", sge.New(sge.Options{})},
	{"moab", "Moab", "#PBS ", "-l gres=gpu:1", moab.New(moab.Options{})},
}

// commandsBlock lists the commands an adapter issues and the directives it renders for exampleSpec.
func commandsBlock(t testing.TB, kind, prefix, extra string, a scheduler.Scheduler) string {
	t.Helper()
	spec := exampleSpec
	spec.Resources.Extra = []string{extra}
	line := func(c scheduler.Command) string {
		s, err := scheduler.CommandLine(c)
		require.NoError(t, err, "%s %v", kind, c.Argv)
		if c.Stdin != nil {
			s += "   # the batch script on stdin"
		}
		return s
	}
	var b strings.Builder
	b.WriteString("Commands (as the login shell receives them; USER, ID1 ID2 stand for the user and the job ids):\n\n```sh\n")
	fmt.Fprintf(&b, "# submit\n%s\n", line(a.SubmitCommand(spec)))
	fmt.Fprintf(&b, "# status, one query per user and poll\n%s\n", line(a.StatusCommand(exampleUser, exampleIDs)))
	if acc, ok := a.(scheduler.Accounting); ok {
		fmt.Fprintf(&b, "# accounting, for jobs the status query no longer lists\n%s\n", line(acc.AccountingCommand(exampleUser, exampleIDs)))
	} else {
		b.WriteString("# accounting: none (see below)\n")
	}
	fmt.Fprintf(&b, "# cancel, one call for all ids\n%s\n", line(a.CancelCommand(exampleIDs)))
	if lk, ok := a.(scheduler.TokenLookup); ok {
		fmt.Fprintf(&b, "# lookup of a job by its Ferry token, after a submit whose reply was lost\n%s\n", line(lk.LookupCommand(exampleUser)))
	}
	b.WriteString("```\n\n")

	script, err := a.Render(spec)
	require.NoError(t, err, kind)
	fmt.Fprintf(&b, "Directives rendered for a task named %q in %s asking for %d CPUs, %d MB, %s, queue %q, account %q, token %q and the extra option %q:\n\n```sh\n",
		spec.Name, spec.Dir, spec.Resources.CPUs, spec.Resources.MemoryMB, strings.TrimSuffix(spec.Resources.Time.String(), "0s"), spec.Resources.Queue, spec.Resources.Account, spec.Token, extra)
	n := 0
	for _, l := range strings.Split(string(script), "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
			n++
		}
	}
	require.NotZero(t, n, "%s: no %q directives in the rendered script", kind, prefix)
	b.WriteString("```\n")
	return b.String()
}

// fuzzTargets lists every fuzz target under scheduler/ as "./scheduler/PKG/ FuzzX", sorted.
func fuzzTargets(t testing.TB) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	var out []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("..", filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := "./scheduler/"
		if rel != "." {
			pkg += filepath.ToSlash(rel) + "/"
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			out = append(out, pkg+" "+string(m[1]))
		}
		return nil
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

func fuzzBlock(t testing.TB) string {
	var b strings.Builder
	b.WriteString("```sh\n")
	for _, pt := range fuzzTargets(t) {
		pkg, name, _ := strings.Cut(pt, " ")
		fmt.Fprintf(&b, "go test -run='^$' -fuzz='^%s$' -fuzztime=60s -fuzzminimizetime=2s %s\n", name, pkg)
	}
	b.WriteString("```\n")
	return b.String()
}

// replaceBlocks returns doc with the content between each block's markers replaced. A missing or
// unterminated block is an error.
func replaceBlocks(doc string, blocks map[string]string) (string, error) {
	names := make([]string, 0, len(blocks))
	for n := range blocks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		begin := "<!-- BEGIN GENERATED " + name + ":"
		i := strings.Index(doc, begin)
		if i < 0 {
			return "", fmt.Errorf("no %q marker", begin)
		}
		j := strings.Index(doc[i:], "-->\n")
		if j < 0 {
			return "", fmt.Errorf("marker %q is not closed with -->", begin)
		}
		start := i + j + len("-->\n")
		end := "<!-- END GENERATED " + name + " -->"
		k := strings.Index(doc[start:], end)
		if k < 0 {
			return "", fmt.Errorf("no %q marker after %q", end, begin)
		}
		doc = doc[:start] + blocks[name] + doc[start+k:]
	}
	return doc, nil
}

// checkGenerated compares path with its regenerated blocks, or rewrites it with -update.
func checkGenerated(t *testing.T, path string, blocks map[string]string) {
	t.Helper()
	old, err := os.ReadFile(path)
	require.NoError(t, err)
	doc, err := replaceBlocks(string(old), blocks)
	require.NoError(t, err, path)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
		return
	}
	require.Equal(t, doc, string(old), "%s is out of date: go test ./scheduler/inspect/ -run TestDocs -update", path)
}

// TestDocsSchedulersUpToDate checks docs/schedulers.md: the state table, and per scheduler the
// commands Ferry issues and the directives it renders.
func TestDocsSchedulersUpToDate(t *testing.T) {
	blocks := map[string]string{"states": statesTable()}
	for _, a := range adapters {
		blocks["commands "+a.kind] = commandsBlock(t, a.kind, a.prefix, a.extra, a.a)
	}
	checkGenerated(t, schedulersDoc, blocks)
}

// TestDocsReadmeUpToDate checks scheduler/README.md lists a fuzz command for every fuzz target.
func TestDocsReadmeUpToDate(t *testing.T) {
	targets := fuzzTargets(t)
	require.Contains(t, targets, "./scheduler/inspect/ FuzzMainAuto")
	require.Contains(t, targets, "./scheduler/ FuzzQuote")
	checkGenerated(t, readmeDoc, map[string]string{"fuzz": fuzzBlock(t)})
}

// TestStateTableAgreesWithParsers checks that every state the table documents maps, through the
// function the parsers use, to the status the table gives, and that no state is unknown.
func TestStateTableAgreesWithParsers(t *testing.T) {
	for _, s := range slurm.States {
		require.Equal(t, s.Status, slurm.StateStatus(s.Code), s.Code)
		require.Equal(t, s.Status, slurm.StateStatus(s.Name), s.Name)
	}
	for _, tbl := range [][]pbs.State{pbs.ProStates, pbs.TorqueStates} {
		for _, s := range tbl {
			require.Equal(t, s.Status, pbs.StateStatus(s.Code), s.Code)
		}
	}
	for _, s := range lsf.States {
		require.Equal(t, s.Status, lsf.StateStatus(s.Code), s.Code)
	}
	for _, s := range sge.States {
		require.Equal(t, s.Status, sge.StateStatus(s.Code), s.Code)
	}
	for _, s := range moab.States {
		require.Equal(t, s.Status, moab.StateStatus(s.Code), s.Code)
	}
	for _, r := range stateRows() {
		require.NotEqual(t, string(scheduler.StatusUnknown), r.status, "%s %s", r.scheduler, r.state)
		require.NotEmpty(t, r.meaning, "%s %s", r.scheduler, r.state)
		require.NotEmpty(t, r.source, "%s %s", r.scheduler, r.state)
	}
}
