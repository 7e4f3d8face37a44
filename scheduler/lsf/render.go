package lsf

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// maxNameLen is the longest job name Ferry renders (LSF allows 4094).
const maxNameLen = 256

// memoryUnits are the units Options.MemoryUnit may name, as powers of 1024 above MB.
var memoryUnits = map[string]int{"KB": -1, "MB": 0, "GB": 1, "TB": 2}

// SubmitCommand returns bsub with the rendered script (Render(spec)) on stdin, run in spec.Dir so
// that the job's working directory is the task directory. bsub reads #BSUB directives only from a
// script on stdin; given a file name it would run the file as a command and ignore them.
//
// The contract gives SubmitCommand only the spec, so the script is rendered a second time here;
// Render is deterministic (the environment is written in sorted order), so these are the bytes the
// agent also staged as .command.run. Should Render fail here (it cannot when it succeeded for the
// same spec, which the agent checks first), the command carries an argument with a NUL byte and the
// render error: scheduler.CommandLine refuses it with that message, so nothing runs.
func (l *LSF) SubmitCommand(spec scheduler.JobSpec) scheduler.Command {
	script, err := l.Render(spec)
	if err != nil {
		return scheduler.Command{Argv: []string{l.prog("bsub"), "\x00ferry: cannot render the batch script: " + err.Error()}, Dir: spec.Dir}
	}
	return scheduler.Command{Argv: []string{l.prog("bsub")}, Stdin: script, Dir: spec.Dir}
}

// Render returns the batch script for spec: "#!/bin/sh", the #BSUB directives below, then the shared
// wrapper (scheduler.RenderWrapper). A value with a blank or any of []|&!<> is written in double
// quotes, the way bsub reads it back as one word.
//
//	#BSUB -J NAME                       spec.Name, every char outside [A-Za-z0-9._-] replaced by '_'
//	                                    (brackets would make an array), at most 256 chars, "ferry"
//	                                    when empty
//	#BSUB -o DIR/.command.log           the job's stdout; without -e, LSF adds stderr to it
//	#BSUB -q QUEUE                      when set
//	#BSUB -n C                          when CPUs > 1...
//	#BSUB -R "span[hosts=1]"            ...all on one host
//	#BSUB -W HH:MM                      when Time > 0, rounded up to whole minutes
//	#BSUB -wa USR2                      when Time > 0 and 0 < Options.WarningLead < Time: USR2 that
//	#BSUB -wt M                         long before the run limit, so the wrapper records exit code 140
//	#BSUB -M N                          when MemoryMB > 0, in Options.MemoryUnit, divided by CPUs
//	                                    unless Options.PerJobMemLimit
//	#BSUB -R "select[mem>=T] rusage[mem=R]"  T the total, R the total (or per task with
//	                                    Options.PerTaskReserve), in Options.MemoryUnit
//	#BSUB -P ACCOUNT                    when set (Options.AccountOption: -P or -G)
//	#BSUB -Jd ferry:TOKEN               when Token is set: the job description, which bjobs -l and
//	                                    bhist -l show, so a job whose submit reply was lost can be
//	                                    found by its token
//	#BSUB EXTRA                         each Resources.Extra element verbatim, last so it can override
//
// Render refuses a task directory that is relative or contains a quote, a backslash, '#', '%'
// (LSF expands %J and %I in output paths), '$' or a control character; a name with a control
// character; a token outside [A-Za-z0-9._:-]{1,128}; a queue or account with a blank, a quote, a
// backslash, '#' or a control character; negative CPUs, memory or time; an invalid memory unit
// or account option; and extra options that would break Ferry's bookkeeping (see checkExtra).
func (l *LSF) Render(spec scheduler.JobSpec) ([]byte, error) {
	d, err := l.directives(spec)
	if err != nil {
		return nil, err
	}
	spec.Resources.Time = scheduler.EnforcedLimit(spec.Resources, time.Minute, setsRunLimit)
	return scheduler.RenderWrapper(spec, d, jobIDVar)
}

// setsRunLimit reports whether an extra option sets the run limit (-W; -We is only an estimate).
func setsRunLimit(x string) bool {
	opt, _, _ := strings.Cut(x, " ")
	return opt == "-W" || len(opt) > 2 && strings.HasPrefix(opt, "-W") && opt[2] >= '0' && opt[2] <= '9'
}

func (l *LSF) directives(spec scheduler.JobSpec) ([]string, error) {
	r := spec.Resources
	if adapter.HasControl(spec.Name) {
		return nil, fmt.Errorf("job name %q contains a control character", spec.Name)
	}
	if !strings.HasPrefix(spec.Dir, "/") {
		return nil, fmt.Errorf("task dir %q is not absolute", spec.Dir)
	}
	if adapter.HasControl(spec.Dir) || strings.ContainsAny(spec.Dir, "\"'\\#%$") {
		return nil, fmt.Errorf("task dir %q contains a control character, a quote, a backslash or one of # %% $, which a #BSUB -o directive cannot carry", spec.Dir)
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
	shift, ok := memoryUnits[l.unit]
	if !ok {
		return nil, fmt.Errorf("memory unit %q is not KB, MB, GB or TB", l.unit)
	}
	if l.account != "-P" && l.account != "-G" {
		return nil, fmt.Errorf("account option %q is not -P or -G", l.account)
	}

	d := []string{
		"#BSUB -J " + jobName(spec.Name),
		"#BSUB -o " + bsubWord(strings.TrimRight(spec.Dir, "/")+"/"+scheduler.LogFile),
	}
	if r.Queue != "" {
		d = append(d, "#BSUB -q "+r.Queue)
	}
	cpus := 1
	if r.CPUs > 1 {
		cpus = r.CPUs
		d = append(d, "#BSUB -n "+strconv.Itoa(cpus), `#BSUB -R "span[hosts=1]"`)
	}
	if r.Time > 0 {
		mins := int64((r.Time + time.Minute - 1) / time.Minute)
		d = append(d, fmt.Sprintf("#BSUB -W %02d:%02d", mins/60, mins%60))
		if lead := int64((l.warningLead + time.Minute - 1) / time.Minute); l.warningLead > 0 && lead < mins {
			wt := strconv.FormatInt(lead, 10)
			if lead >= 60 {
				wt = fmt.Sprintf("%d:%02d", lead/60, lead%60)
			}
			d = append(d, "#BSUB -wa USR2", "#BSUB -wt "+wt)
		}
	}
	if r.MemoryMB > 0 {
		total := convert(r.MemoryMB, shift)
		limit, reserve := total, total
		if cpus > 1 && !l.perJobLimit {
			limit = convert((r.MemoryMB+int64(cpus)-1)/int64(cpus), shift)
		}
		if cpus > 1 && l.perTaskRes {
			reserve = convert((r.MemoryMB+int64(cpus)-1)/int64(cpus), shift)
		}
		d = append(d, "#BSUB -M "+strconv.FormatInt(limit, 10),
			fmt.Sprintf(`#BSUB -R "select[mem>=%d] rusage[mem=%d]"`, total, reserve))
	}
	if r.Account != "" {
		d = append(d, "#BSUB "+l.account+" "+r.Account)
	}
	if spec.Token != "" {
		d = append(d, "#BSUB -Jd ferry:"+spec.Token)
	}
	for i, x := range r.Extra {
		if err := checkExtra(x, spec.Token != ""); err != nil {
			return nil, fmt.Errorf("extra option %d %q: %w", i, x, err)
		}
		d = append(d, "#BSUB "+x)
	}
	return d, nil
}

// convert turns mb megabytes into the unit 1024^shift MB, rounding up.
func convert(mb int64, shift int) int64 {
	switch {
	case shift < 0:
		return mb * 1024
	case shift == 0:
		return mb
	}
	div := int64(1) << (10 * shift)
	return (mb + div - 1) / div
}

// jobName maps name to an LSF job name (see Render).
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
	if b.Len() == 0 {
		return "ferry"
	}
	return b.String()
}

// bsubWord writes v so that bsub reads it back as one word: in double quotes when it contains a
// blank or any of []|&!<> (Nextflow's rule), as is otherwise. v holds no quote or backslash.
func bsubWord(v string) string {
	if strings.ContainsAny(v, " \t[]|&!<>") {
		return `"` + v + `"`
	}
	return v
}

// checkWord accepts a queue or account name that bsub reads back as one word.
func checkWord(field, v string) error {
	if v == "" {
		return nil
	}
	if adapter.HasControl(v) || strings.ContainsAny(v, " \t\"'\\#") {
		return fmt.Errorf("%s %q contains a blank, a quote, a backslash, '#' or a control character, which a #BSUB directive cannot carry", field, v)
	}
	return nil
}

// checkExtra accepts one Resources.Extra element: a bsub option ("-R \"rusage[ngpus=1]\"",
// "-app big") on one line. It refuses the options that would break Ferry: the output files (-o,
// -oo, -e, -eo: the scheduler's log must stay in .command.log), job arrays (-J with brackets: each
// task is its own job with its own .exitcode), interactive jobs (-I, -Ip, -Is, -IS, -ISp, -ISs,
// -IX), -K (bsub would wait for the job to end), and -Jd when a token is set (the description
// carries it).
func checkExtra(x string, haveToken bool) error {
	if err := scheduler.CheckDirective(x); err != nil {
		return err
	}
	opt, rest, _ := strings.Cut(strings.TrimSpace(x), " ")
	if len(opt) < 2 || opt[0] != '-' || opt[1] == '-' {
		return fmt.Errorf("is not a bsub option (\"-opt ...\")")
	}
	switch {
	case opt == "-o" || opt == "-oo" || opt == "-e" || opt == "-eo":
		return fmt.Errorf("the job's output goes to %s; -o, -oo, -e and -eo cannot be overridden", scheduler.LogFile)
	case opt == "-J" && strings.ContainsAny(rest, "[]"):
		return fmt.Errorf("job arrays are not supported: each task is its own job")
	case strings.HasPrefix(opt, "-I"):
		return fmt.Errorf("interactive jobs are not supported")
	case opt == "-K":
		return fmt.Errorf("-K makes bsub wait for the job to end")
	case opt == "-Jd" && haveToken:
		return fmt.Errorf("the job description carries Ferry's idempotency token and cannot be overridden")
	}
	return nil
}

// jobIDVar is the variable the scheduler sets to the job's id in the batch job's environment; the
// wrapper records it in .command.begin (scheduler.RenderWrapper).
const jobIDVar = "LSB_JOBID"
