package sge

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// maxNameLen is the longest job name Ferry renders.
const maxNameLen = 256

// complexName is what a memory complex name may look like.
var complexName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Render returns the batch script for spec: "#!/bin/sh", the #$ directives below, then the shared
// wrapper (scheduler.RenderWrapper).
//
//	#$ -N NAME                  spec.Name, every char outside [A-Za-z0-9._-] replaced by '_' (Grid
//	                            Engine refuses / : @ \ * ? and blanks), "f" in front of a leading
//	                            digit (a numeric name reads as a job id in qdel), at most 256 chars,
//	                            "ferry" when empty
//	#$ -o DIR/.command.log      the job's own stdout and stderr...
//	#$ -j y                     ...joined into that one file
//	#$ -S /bin/sh               the wrapper is POSIX sh; Grid Engine otherwise starts the job with
//	                            the queue's shell or the user's login shell (tcsh, with
//	                            shell_start_mode unix_behavior ignored)
//	#$ -cwd                     run in the task directory (the wrapper cds there too)
//	#$ -r n                     not rerunnable: a rerun would run the task a second time
//	#$ -notify                  with Options.Notify (see there)
//	#$ -q QUEUE                 when set
//	#$ -pe ENV C                when CPUs > 1 (Options.ParallelEnv)
//	#$ -l h_rt=HH:MM:SS         when Time > 0, rounded up to whole seconds
//	#$ -l R=NM,...              when MemoryMB > 0: each of Options.MemoryResources, per slot
//	                            (MemoryMB divided by CPUs, rounded up)
//	#$ -A ACCOUNT               when set (Options.AccountOption: -A or -P)
//	#$ -ac FERRY_TOKEN=TOKEN    when Token is set: the job context, which qstat -j shows, so a job
//	                            whose submit reply was lost can be found by its token
//	#$ EXTRA                    each Resources.Extra element verbatim, last so it can override
//
// qsub splits a directive's words on blanks and reads -o as [host:]path with $HOME, $JOB_ID and
// the like expanded, so Render refuses a task directory that is relative or contains whitespace,
// a quote, a backslash, '#', ':', '$' or a control character. It also refuses a name with a
// control character, a token outside [A-Za-z0-9._:-]{1,128}, a queue, account or parallel
// environment with whitespace, a quote, a backslash, '#', ',' or a control character, a memory
// resource that is not a complex name, negative CPUs, memory or time, an invalid
// Options.AccountOption, and extra options that would break Ferry's bookkeeping (see checkExtra).
func (s *SGE) Render(spec scheduler.JobSpec) ([]byte, error) {
	d, err := s.directives(spec)
	if err != nil {
		return nil, err
	}
	spec.Resources.Time = scheduler.EnforcedLimit(spec.Resources, time.Second, setsRuntime)
	return scheduler.RenderWrapper(spec, d, jobIDVar)
}

// setsRuntime reports whether an extra option sets the hard run time limit (-l h_rt=...).
func setsRuntime(x string) bool {
	return strings.HasPrefix(x, "-l") && strings.Contains(x, "h_rt")
}

func (s *SGE) directives(spec scheduler.JobSpec) ([]string, error) {
	r := spec.Resources
	if adapter.HasControl(spec.Name) {
		return nil, fmt.Errorf("job name %q contains a control character", spec.Name)
	}
	if err := adapter.CheckQsubDir(spec.Dir, "#$ -o"); err != nil {
		return nil, err
	}
	if err := adapter.CheckNonNegative(r); err != nil {
		return nil, err
	}
	if err := adapter.CheckToken(spec.Token); err != nil {
		return nil, err
	}
	for _, f := range []struct{ field, v string }{{"queue", r.Queue}, {"account", r.Account}, {"parallel environment", s.pe}} {
		if err := checkWord(f.field, f.v); err != nil {
			return nil, err
		}
	}
	for _, m := range s.mem {
		if !complexName.MatchString(m) {
			return nil, fmt.Errorf("memory resource %q is not a complex name", m)
		}
	}
	if s.account != "-A" && s.account != "-P" {
		return nil, fmt.Errorf("account option %q is not -A or -P", s.account)
	}

	d := []string{
		"#$ -N " + jobName(spec.Name),
		"#$ -o " + strings.TrimRight(spec.Dir, "/") + "/" + scheduler.LogFile,
		"#$ -j y",
		"#$ -S /bin/sh",
		"#$ -cwd",
		"#$ -r n",
	}
	if s.notify {
		d = append(d, "#$ -notify")
	}
	if r.Queue != "" {
		d = append(d, "#$ -q "+r.Queue)
	}
	slots := 1
	if r.CPUs > 1 {
		slots = r.CPUs
		d = append(d, "#$ -pe "+s.pe+" "+strconv.Itoa(r.CPUs))
	}
	if r.Time > 0 {
		d = append(d, "#$ -l h_rt="+formatLimit(r.Time))
	}
	if r.MemoryMB > 0 && len(s.mem) > 0 {
		per := (r.MemoryMB + int64(slots) - 1) / int64(slots)
		parts := make([]string, len(s.mem))
		for i, m := range s.mem {
			parts[i] = m + "=" + strconv.FormatInt(per, 10) + "M"
		}
		d = append(d, "#$ -l "+strings.Join(parts, ","))
	}
	if r.Account != "" {
		d = append(d, "#$ "+s.account+" "+r.Account)
	}
	if spec.Token != "" {
		d = append(d, "#$ -ac FERRY_TOKEN="+spec.Token)
	}
	for i, x := range r.Extra {
		if err := checkExtra(x); err != nil {
			return nil, fmt.Errorf("extra option %d %q: %w", i, x, err)
		}
		d = append(d, "#$ "+x)
	}
	return d, nil
}

// jobName maps name to a Grid Engine job name (see Render).
func jobName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if b.Len() >= maxNameLen {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	n := b.String()
	switch {
	case n == "":
		return "ferry"
	case n[0] >= '0' && n[0] <= '9':
		n = "f" + n
		if len(n) > maxNameLen {
			n = n[:maxNameLen]
		}
	}
	return n
}

// formatLimit renders d as HH:MM:SS, rounded up to whole seconds; hours are not wrapped into days.
func formatLimit(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}

// checkWord accepts a queue, account or parallel environment name that qsub reads back as one word.
func checkWord(field, v string) error {
	if v == "" {
		return nil
	}
	if adapter.HasControl(v) {
		return fmt.Errorf("%s %q contains a control character", field, v)
	}
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 || strings.ContainsAny(v, "\"'\\#,") {
		return fmt.Errorf("%s %q contains whitespace, a quote, a backslash, '#' or ',', which a #$ directive cannot carry", field, v)
	}
	return nil
}

// checkExtra accepts one Resources.Extra element: a qsub option ("-l gpu=1", "-hold_jid 12") on one
// line. It refuses the options that would break Ferry: job arrays (-t, -tc: each task is its own
// job with its own .exitcode), the output files (-o, -e, -j: the scheduler's log must stay in
// .command.log), the shell (-S: the wrapper needs sh), the directive prefix (-C), binary mode
// (-b), options files (-@), and the options that make qsub wait for the job or not submit it
// (-sync, -verify, -w v).
func checkExtra(x string) error {
	if err := scheduler.CheckDirective(x); err != nil {
		return err
	}
	opt, rest, _ := strings.Cut(strings.TrimSpace(x), " ")
	if len(opt) < 2 || opt[0] != '-' || opt[1] == '-' {
		return fmt.Errorf("is not a qsub option (\"-opt ...\")")
	}
	switch opt {
	case "-t", "-tc":
		return fmt.Errorf("job arrays are not supported: each task is its own job")
	case "-o", "-e", "-j":
		return fmt.Errorf("the job's output goes to %s; -o, -e and -j cannot be overridden", scheduler.LogFile)
	case "-S":
		return fmt.Errorf("the wrapper needs /bin/sh; -S cannot be overridden")
	case "-C":
		return fmt.Errorf("-C changes the directive prefix, so Ferry's directives would be ignored")
	case "-b":
		return fmt.Errorf("binary mode would not run the wrapper as a script")
	case "-@":
		return fmt.Errorf("options files are not supported: give the options themselves")
	case "-sync", "-verify":
		return fmt.Errorf("%s makes qsub wait for the job or not submit it", opt)
	case "-w":
		if strings.TrimSpace(rest) == "v" {
			return fmt.Errorf("-w v only verifies the job; it would not be submitted")
		}
	}
	return nil
}

// jobIDVar is the variable the scheduler sets to the job's id in the batch job's environment; the
// wrapper records it in .command.begin (scheduler.RenderWrapper).
const jobIDVar = "JOB_ID"
