package slurm

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// maxNameLen is the longest job name Ferry renders (Slurm itself allows more; 256 matches what
// users see from other tools).
const maxNameLen = 256

// Render returns the batch script for spec: "#!/bin/sh", the #SBATCH directives below, then the
// shared wrapper (scheduler.RenderWrapper).
//
//	#SBATCH -J NAME                 spec.Name, every char outside [A-Za-z0-9._-] replaced by '_',
//	                                at most 256 chars, "ferry" when empty
//	#SBATCH -o DIR/.command.log     stdout and stderr of the batch shell (sbatch joins them)
//	#SBATCH --no-requeue
//	#SBATCH --signal B:USR2@30      Options.SignalLead; left out when negative
//	#SBATCH -c N                    when CPUs > 1
//	#SBATCH -t [D-]HH:MM:SS         when Time > 0, rounded up to whole minutes (Slurm's unit)
//	#SBATCH --mem NM                when MemoryMB > 0
//	#SBATCH -p QUEUE                when set
//	#SBATCH -A ACCOUNT              when set
//	#SBATCH --comment=ferry:TOKEN   when Token is set; squeue %k and sacct Comment show it
//	#SBATCH EXTRA                   each Resources.Extra element verbatim, last so it can override
//
// sbatch reads each #SBATCH line like a small shell: whitespace splits words, "..." and '...'
// group them, a backslash escapes the next character and an unquoted '#' starts a comment. Values
// Ferry renders are written so that sbatch reads them back exactly (see sbatchWord); the -o path
// may contain spaces, quotes and '#' but not a backslash, which sbatch's file name patterns give a
// meaning of their own, and its '%' are doubled so that sbatch does not expand them (%j, %u...).
// Extra options are the caller's and are written as given, so they follow the same rules (quote a
// value with blanks; an unquoted '#' starts a comment). Options given on sbatch's command line or
// in SBATCH_* variables of the user's environment still take precedence over all directives.
//
// Render fails, naming the field, on: a name with a control character (a newline in a name is a
// caller bug, not something to sanitise away), a relative task directory or one with a backslash or
// control character, a token outside [A-Za-z0-9._:-]{1,128}, a queue or account with whitespace,
// quotes, '#', a backslash or a control character, negative CPUs, memory or time, and an extra
// option that does not start with '-', contains a newline or NUL, or would break Ferry's
// bookkeeping (see checkExtra).
func (s *Slurm) Render(spec scheduler.JobSpec) ([]byte, error) {
	d, err := s.directives(spec)
	if err != nil {
		return nil, err
	}
	spec.Resources.Time = scheduler.EnforcedLimit(spec.Resources, time.Minute, setsTime)
	return scheduler.RenderWrapper(spec, d, jobIDVar)
}

// setsTime reports whether an extra option sets the time limit (-t, --time).
func setsTime(x string) bool {
	return strings.HasPrefix(x, "-t") && !strings.HasPrefix(x, "--") ||
		x == "--time" || strings.HasPrefix(x, "--time=") || strings.HasPrefix(x, "--time ")
}

func (s *Slurm) directives(spec scheduler.JobSpec) ([]string, error) {
	r := spec.Resources
	name, err := sanitizeName(spec.Name)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(spec.Dir, "/") {
		return nil, fmt.Errorf("task dir %q is not absolute", spec.Dir)
	}
	if strings.ContainsRune(spec.Dir, '\\') {
		return nil, fmt.Errorf("task dir %q contains a backslash, which sbatch -o cannot express (it turns off file name patterns and is dropped)", spec.Dir)
	}
	if adapter.HasControl(spec.Dir) {
		return nil, fmt.Errorf("task dir %q contains a control character", spec.Dir)
	}
	if err := adapter.CheckNonNegative(r); err != nil {
		return nil, err
	}
	if err := adapter.CheckToken(spec.Token); err != nil {
		return nil, err
	}
	for _, f := range []struct{ field, v string }{{"queue", r.Queue}, {"account", r.Account}} {
		if err := checkWord(f.field, f.v); err != nil {
			return nil, err
		}
	}

	out := strings.TrimRight(spec.Dir, "/") + "/" + scheduler.LogFile
	d := []string{
		"#SBATCH -J " + sbatchWord(name),
		"#SBATCH -o " + sbatchWord(strings.ReplaceAll(out, "%", "%%")),
		"#SBATCH --no-requeue",
	}
	if s.signalLead > 0 {
		if s.signalLead > maxSignalLead {
			return nil, fmt.Errorf("signal lead %s is above sbatch's limit of %s", s.signalLead, maxSignalLead)
		}
		secs := (s.signalLead + time.Second - 1) / time.Second
		d = append(d, "#SBATCH --signal B:USR2@"+strconv.FormatInt(int64(secs), 10))
	}
	if r.CPUs > 1 {
		d = append(d, "#SBATCH -c "+strconv.Itoa(r.CPUs))
	}
	if r.Time > 0 {
		d = append(d, "#SBATCH -t "+formatLimit(r.Time))
	}
	if r.MemoryMB > 0 {
		d = append(d, "#SBATCH --mem "+strconv.FormatInt(r.MemoryMB, 10)+"M")
	}
	if r.Queue != "" {
		d = append(d, "#SBATCH -p "+sbatchWord(r.Queue))
	}
	if r.Account != "" {
		d = append(d, "#SBATCH -A "+sbatchWord(r.Account))
	}
	if spec.Token != "" {
		d = append(d, "#SBATCH "+sbatchWord("--comment=ferry:"+spec.Token))
	}
	for i, x := range r.Extra {
		if err := checkExtra(x, spec.Token != ""); err != nil {
			return nil, fmt.Errorf("extra option %d %q: %w", i, x, err)
		}
		d = append(d, "#SBATCH "+x)
	}
	return d, nil
}

// sanitizeName maps name to a Slurm job name: every character outside [A-Za-z0-9._-] becomes '_'
// (one per character, nothing collapsed), the result is cut to maxNameLen, and an empty name
// becomes "ferry". A control character (newline, NUL, tab...) is refused instead.
func sanitizeName(name string) (string, error) {
	if adapter.HasControl(name) {
		return "", fmt.Errorf("job name %q contains a control character", name)
	}
	var b strings.Builder
	n := 0
	for _, r := range name {
		if n == maxNameLen {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		n++
	}
	if b.Len() == 0 {
		return "ferry", nil
	}
	return b.String(), nil
}

// formatLimit renders d for sbatch -t, rounded up to whole minutes: "HH:MM:SS" below a day,
// "D-HH:MM:SS" from a day on.
func formatLimit(d time.Duration) string {
	mins := int64((d + time.Minute - 1) / time.Minute)
	days, mins := mins/(24*60), mins%(24*60)
	if days > 0 {
		return fmt.Sprintf("%d-%02d:%02d:00", days, mins/60, mins%60)
	}
	return fmt.Sprintf("%02d:%02d:00", mins/60, mins%60)
}

// checkWord accepts a queue or account name that sbatch reads back as one word without quoting.
func checkWord(field, v string) error {
	if v == "" {
		return nil
	}
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 {
		return fmt.Errorf("%s %q contains whitespace, which Slurm does not allow in a %s name", field, v, field)
	}
	if adapter.HasControl(v) {
		return fmt.Errorf("%s %q contains a control character", field, v)
	}
	if strings.ContainsAny(v, "\"'\\#") {
		return fmt.Errorf("%s %q contains a quote, backslash or '#', which sbatch would read as syntax", field, v)
	}
	return nil
}

// checkExtra accepts one Resources.Extra element. It must be an option ("-..." or "--..."), one
// line, and must not take over what Ferry relies on: --array (one task per job: every array task
// would share one .exitcode), --comment when a token is set (it carries the token), and the words
// "hetjob"/"packjob", which sbatch reads as the separator of a heterogeneous job. Long options may
// be abbreviated on sbatch's command line, so any prefix of "--array" or "--comment" is refused too.
func checkExtra(x string, haveToken bool) error {
	if !strings.HasPrefix(x, "-") {
		return fmt.Errorf("does not start with '-'")
	}
	if err := scheduler.CheckDirective(x); err != nil {
		return err
	}
	low := strings.ToLower(x)
	if strings.Contains(low, "hetjob") || strings.Contains(low, "packjob") {
		return fmt.Errorf("contains %q, which sbatch reads as a heterogeneous job separator", "hetjob/packjob")
	}
	if strings.HasPrefix(x, "--") {
		opt := x[2:]
		if i := strings.IndexAny(opt, "= \t"); i >= 0 {
			opt = opt[:i]
		}
		if opt != "" && strings.HasPrefix("array", opt) {
			return fmt.Errorf("job arrays are not supported: each task is its own job")
		}
		if opt != "" && haveToken && strings.HasPrefix("comment", opt) {
			return fmt.Errorf("--comment carries Ferry's idempotency token and cannot be overridden")
		}
		return nil
	}
	if strings.HasPrefix(x, "-a") {
		return fmt.Errorf("job arrays are not supported: each task is its own job")
	}
	return nil
}

// sbatchWord writes v so that sbatch's #SBATCH line parser reads it back as exactly one argument.
// That parser (Slurm's get_argument) splits on whitespace, groups with "..." or '...', takes a
// backslash as "the next character is literal" (except before whitespace, which ends the word
// even when escaped: hence the quotes), ends the line at an unquoted '#' and aborts on a word
// starting with ':'. Older versions treat '#' as a comment even inside quotes and blank out the
// word "packjob" before parsing; newer ones read "hetjob" as a job separator. So double and single
// quotes, '#' and a leading ':' are escaped with a backslash, and so is the 'j' of hetjob and
// packjob; the whole word is put in double quotes when it contains whitespace. v must not contain
// a backslash or a control character (callers check). Checked against Slurm 22.05 by the
// integration tests and against a transcription of get_argument by TestSbatchWordRoundTrip.
func sbatchWord(v string) string {
	var b strings.Builder
	low := asciiLower(v)
	quote := strings.IndexFunc(v, unicode.IsSpace) >= 0
	if quote {
		b.WriteByte('"')
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\'' || c == '#' || (c == ':' && i == 0 && !quote):
			b.WriteByte('\\')
		case (c == 'j' || c == 'J') && (hasSuffixAt(low, i, "het") || hasSuffixAt(low, i, "pack")) && strings.HasPrefix(low[i:], "job"):
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	if quote {
		b.WriteByte('"')
	}
	return b.String()
}

// asciiLower lowers A-Z only, so byte offsets stay those of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// hasSuffixAt reports whether s[:i] ends with suffix.
func hasSuffixAt(s string, i int, suffix string) bool {
	return strings.HasSuffix(s[:i], suffix)
}

// jobIDVar is the variable the scheduler sets to the job's id in the batch job's environment; the
// wrapper records it in .command.begin (scheduler.RenderWrapper).
const jobIDVar = "SLURM_JOB_ID"
