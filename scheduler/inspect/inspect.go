// Package inspect implements `ferry scheduler`, the command administrators use to check how Ferry
// reads their site's scheduler output without a cluster or a running agent:
//
//	ferry scheduler parse --scheduler slurm|pbspro|torque|lsf|sge --output submit|status [--format NAME|auto] < FILE
//	ferry scheduler formats [--scheduler KIND]
//
// It is pure: it reads only the given stdin and writes only the given stdout and stderr, through
// the scheduler packages' own parsers, so what it prints is what the agent would see. Each
// scheduler has one table of formats (Format: name, description, detection, parser); auto
// detection tries them in order, Ferry's own formats first.
package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/ferryhpc/ferry/scheduler"
)

// MaxInput bounds what parse reads from stdin. The largest real outputs Ferry has seen are a few
// MiB (qstat -F -xml of a whole site); anything beyond this is refused rather than buffered.
const MaxInput = 64 << 20

const usage = `ferry scheduler shows how Ferry reads a scheduler's output; no cluster or agent needed.

Usage:
  ferry scheduler parse --scheduler KIND --output status|submit [--format NAME|auto] [--ids ID,...] [-v] < FILE
  ferry scheduler formats [--scheduler KIND]

KIND is one of slurm, pbspro, torque, lsf, sge, moab.

parse reads a command's stdout (FILE) on standard input and prints what Ferry sees in it:
  --output status   {"jobs":[{"id":"...","state":"...","status":"..."}]}
                    state is the scheduler's own code or word with decorations such as
                    "by 1000" removed; status is Ferry's: pending, held, running, completed,
                    failed, cancelled, timeout, or unknown for a state Ferry does not know
  --output submit   {"id":"..."}: the job id a submit command (sbatch, qsub, bsub) printed
  --format NAME     read the input as format NAME; the default, auto, detects it from the
                    content and says which formats it tried when none fits
  --ids ID,...      the job ids the command named, in order (bjobs -json whose -o lacks jobid)
  -v                say on stderr which format was read

formats lists each scheduler's formats, Ferry's own queries first, with the command that prints
them: run that command on a login node and pipe it into parse to check your site.

Exit status: 0 parsed; 1 the input cannot be parsed (the message names the line); 2 bad usage.
`

// Main runs `ferry scheduler` with args (the words after "scheduler") and returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "parse":
		return cmdParse(args[1:], stdin, stdout, stderr)
	case "formats":
		return cmdFormats(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ferry scheduler: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// usageError prints msg and the usage on stderr and returns 2.
func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "ferry scheduler %s: %s\n\n%s", cmd, msg, usage)
	return 2
}

// newFlags returns a flag set for cmd whose own messages go to stderr and that prints no usage of
// its own (the callers print the command's usage).
func newFlags(cmd string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry scheduler "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs. It returns -1 to go on, or the exit status: 0 after -h (usage on
// stdout), 2 on a bad flag or a stray argument.
func parseFlags(fs *flag.FlagSet, cmd string, args []string, stdout, stderr io.Writer) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "\n%s", usage) // the flag package already printed the error
		return 2
	}
	if fs.NArg() > 0 {
		return usageError(stderr, cmd, fmt.Sprintf("unexpected argument %q (the input is read from stdin)", fs.Arg(0)))
	}
	return -1
}

func lookupKind(stderr io.Writer, cmd, kind string) (*Scheduler, int) {
	if kind == "" {
		return nil, usageError(stderr, cmd, "--scheduler is required (one of "+strings.Join(Kinds, ", ")+")")
	}
	s, ok := Lookup(kind)
	if !ok {
		return nil, usageError(stderr, cmd, fmt.Sprintf("unknown scheduler %q (one of %s)", kind, strings.Join(Kinds, ", ")))
	}
	return s, -1
}

// jobJSON and statusJSON are what --output status prints; field order is part of the interface.
type jobJSON struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Status string `json:"status"`
}

type statusJSON struct {
	Jobs []jobJSON `json:"jobs"`
}

// submitJSON is what --output submit prints.
type submitJSON struct {
	ID string `json:"id"`
}

func cmdParse(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("parse", stderr)
	kind := fs.String("scheduler", "", "scheduler kind: "+strings.Join(Kinds, ", "))
	output := fs.String("output", "", "what the input is: status (a status or accounting query) or submit")
	format := fs.String("format", "auto", "input format, or auto to detect it")
	idList := fs.String("ids", "", "job ids the command named, in order (bjobs -json without jobid)")
	verbose := fs.Bool("v", false, "say on stderr which format was read")
	if code := parseFlags(fs, "parse", args, stdout, stderr); code >= 0 {
		return code
	}
	s, code := lookupKind(stderr, "parse", *kind)
	if s == nil {
		return code
	}
	var opt Options
	if *idList != "" {
		for _, id := range strings.FieldsFunc(*idList, func(r rune) bool { return r == ',' || r == ' ' }) {
			opt.IDs = append(opt.IDs, scheduler.JobID(id))
		}
	}

	var fmts []Format
	switch *output {
	case "status":
		if *format == "auto" {
			fmts = s.Formats
		} else if f, ok := s.Format(*format); ok {
			fmts = []Format{f}
		} else {
			return usageError(stderr, "parse", fmt.Sprintf("%s has no status format %q (one of auto, %s)", s.Kind, *format, strings.Join(s.FormatNames(), ", ")))
		}
	case "submit":
		if *format != "auto" && *format != s.Submit {
			return usageError(stderr, "parse", fmt.Sprintf("--output submit reads %s output: --format is auto or %s, not %q", s.Submit, s.Submit, *format))
		}
	case "":
		return usageError(stderr, "parse", "--output is required (status or submit)")
	default:
		return usageError(stderr, "parse", fmt.Sprintf("unknown --output %q (status or submit)", *output))
	}

	in, err := io.ReadAll(io.LimitReader(stdin, MaxInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "ferry scheduler parse: read stdin: %v\n", err)
		return 1
	}
	if len(in) > MaxInput {
		fmt.Fprintf(stderr, "ferry scheduler parse: input larger than %d MiB; cut it to the jobs in question\n", MaxInput>>20)
		return 1
	}

	if *output == "submit" {
		id, err := s.ParseSubmit(in)
		if err != nil {
			fmt.Fprintf(stderr, "ferry scheduler parse: %s: %v\n", s.Submit, err)
			return 1
		}
		if *verbose {
			fmt.Fprintf(stderr, "ferry scheduler parse: read as %s %s output\n", s.Kind, s.Submit)
		}
		return writeJSON(stdout, stderr, submitJSON{ID: string(id)})
	}

	states, name, err := parseStatus(s, fmts, *format == "auto", in, opt)
	if err != nil {
		fmt.Fprintf(stderr, "ferry scheduler parse: %v\n", err)
		return 1
	}
	if *verbose {
		fmt.Fprintf(stderr, "ferry scheduler parse: read as %s %s\n", s.Kind, name)
	}
	out := statusJSON{Jobs: make([]jobJSON, 0, len(states))}
	for _, js := range states {
		out.Jobs = append(out.Jobs, jobJSON{ID: string(js.ID), State: js.Raw, Status: string(js.Status)})
	}
	return writeJSON(stdout, stderr, out)
}

// parseStatus reads in with the first of fmts that parses it. With auto, only the formats whose
// Detect accepts the input are tried, in order; input that is blank is no jobs. It returns the
// states and the name of the format that read them. Errors name the format and, through the
// parsers' messages, the line.
func parseStatus(s *Scheduler, fmts []Format, auto bool, in []byte, opt Options) ([]scheduler.JobState, string, error) {
	if !auto {
		f := fmts[0]
		states, err := f.Parse(in, opt)
		if err != nil {
			return nil, "", fmt.Errorf("read as %s %s: %w", s.Kind, f.Name, withLine(err, in))
		}
		return states, f.Name, nil
	}
	if len(bytes.TrimSpace(in)) == 0 {
		return nil, "empty input", nil
	}
	var firstErr error
	var failed []string
	for _, f := range fmts {
		if !f.Detect(in) {
			continue
		}
		states, err := f.Parse(in, opt)
		if err == nil {
			return states, f.Name, nil
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("read as %s %s (detected): %w", s.Kind, f.Name, withLine(err, in))
		}
		failed = append(failed, f.Name)
	}
	if firstErr != nil {
		if len(failed) > 1 {
			return nil, "", fmt.Errorf("%w (also failed as %s)", firstErr, strings.Join(failed[1:], ", "))
		}
		return nil, "", firstErr
	}
	lines, nos := headLines(in, 1)
	return nil, "", fmt.Errorf("cannot tell the %s format of line %d %q; tried %s: pass --format (ferry scheduler formats --scheduler %s lists them)",
		s.Kind, nos[0], bound(lines[0]), strings.Join(s.FormatNames(), ", "), s.Kind)
}

// namesLine matches a message that names a line ("squeue line 3", "on line 12").
var namesLine = regexp.MustCompile(`\bline [0-9]`)

// withLine adds the input's first line to a parser error that names no line ("qstat output has no
// table header"), so that the message shows what was read.
func withLine(err error, in []byte) error {
	if namesLine.MatchString(err.Error()) {
		return err
	}
	lines, nos := headLines(in, 1)
	if len(lines) == 0 {
		return err
	}
	return fmt.Errorf("%w (input line %d: %q)", err, nos[0], bound(lines[0]))
}

// bound shortens s for a message.
func bound(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// writeJSON prints v as one line of JSON. HTML escaping is off so ids such as "1080_[5-1024]" and
// states print as the scheduler wrote them.
func writeJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "ferry scheduler parse: write stdout: %v\n", err)
		return 1
	}
	return 0
}

func cmdFormats(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("formats", stderr)
	kind := fs.String("scheduler", "", "scheduler kind (default: all)")
	if code := parseFlags(fs, "formats", args, stdout, stderr); code >= 0 {
		return code
	}
	kinds := Kinds
	if *kind != "" {
		if _, code := lookupKind(stderr, "formats", *kind); code >= 0 {
			return code
		}
		kinds = []string{*kind}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for i, k := range kinds {
		s, _ := Lookup(k)
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%s status formats (--output status; auto tries them in this order):\n", s.Kind)
		for _, f := range s.Formats {
			fmt.Fprintf(tw, "  %s\t%s\n", f.Name, f.Description)
		}
		fmt.Fprintf(tw, "%s submit format (--output submit):\n", s.Kind)
		fmt.Fprintf(tw, "  %s\t%s\n", s.Submit, s.SubmitDescription)
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "ferry scheduler formats: write stdout: %v\n", err)
		return 1
	}
	return 0
}
