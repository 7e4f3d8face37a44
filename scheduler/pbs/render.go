package pbs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// Render returns the batch script for spec: "#!/bin/sh", the #PBS directives below, then the shared
// wrapper (scheduler.RenderWrapper).
//
//	#PBS EXTRA                        PBS Pro only: each Resources.Extra element verbatim, FIRST,
//	                                  because PBS Pro keeps the first of competing directives
//	#PBS -N NAME                      see jobName: at most Options.MaxNameLen (15) characters
//	#PBS -o DIR/.command.log          the job's own stdout and stderr...
//	#PBS -j oe                        ...joined into that one file
//	#PBS -S /bin/sh                   the wrapper is POSIX sh; PBS otherwise runs the script with
//	                                  the user's login shell (tcsh would fail on the first line)
//	#PBS -r n                         not rerunnable: a rerun would run the task a second time
//	#PBS -q QUEUE                     when set
//	#PBS -l walltime=HH:MM:SS         when Time > 0, rounded up to whole seconds; hours may exceed 24
//	#PBS -l select=1:ncpus=C:mem=Mmb  PBS Pro, when CPUs > 1 or MemoryMB > 0 (parts left out when 0)
//	#PBS -l nodes=1:ppn=C             Torque, when CPUs > 1
//	#PBS -l mem=Mmb                   Torque, when MemoryMB > 0
//	#PBS -A ACCOUNT                   when set (Options.AccountOption: -A or, PBS Pro, -P)
//	#PBS -v FERRY_TOKEN=TOKEN         when Token is set: qstat -f shows it in Variable_List, so a job
//	                                  whose submit reply was lost can be found by its token (on PBS
//	                                  Pro an extra -v, coming first, replaces this one)
//	#PBS EXTRA                        Torque: each Resources.Extra element verbatim, last
//
// qsub reads a directive's words like a command line, and -o takes [host:]path, so Render refuses a
// task directory that is relative or contains whitespace, a quote, a backslash, '#', ':', '$' or
// a control character, and for Torque any character outside [A-Za-z0-9/._,=+@-] (see
// SubmitCommand). It also refuses a name with a control character, a token outside
// [A-Za-z0-9._:-]{1,128}, a queue or account with whitespace, a quote, a backslash, '#' or a
// control character, negative CPUs, memory or time, an invalid Options.AccountOption, and extra
// options that would break Ferry's bookkeeping (see checkExtra).
func (c *core) Render(spec scheduler.JobSpec) ([]byte, error) {
	d, err := c.directives(spec)
	if err != nil {
		return nil, err
	}
	spec.Resources.Time = scheduler.EnforcedLimit(spec.Resources, time.Second, setsWalltime)
	return scheduler.RenderWrapper(spec, d, c.idVar)
}

// setsWalltime reports whether an extra option sets the walltime (-l walltime=...).
func setsWalltime(x string) bool {
	return strings.HasPrefix(x, "-l") && strings.Contains(x, "walltime")
}

func (c *core) directives(spec scheduler.JobSpec) ([]string, error) {
	r := spec.Resources
	if adapter.HasControl(spec.Name) {
		return nil, fmt.Errorf("job name %q contains a control character", spec.Name)
	}
	if err := c.checkDir(spec.Dir); err != nil {
		return nil, err
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
	switch {
	case c.account == "-A":
	case c.account == "-P" && c.flavor == flavorPro:
	case c.account == "-P":
		return nil, fmt.Errorf("account option %q is not allowed for Torque, where qsub -P means \"run as another user\"; use -A", c.account)
	default:
		return nil, fmt.Errorf("account option %q is not -A or -P", c.account)
	}
	var extra []string
	for i, x := range r.Extra {
		if err := checkExtra(x); err != nil {
			return nil, fmt.Errorf("extra option %d %q: %w", i, x, err)
		}
		extra = append(extra, "#PBS "+x)
	}

	var d []string
	if c.flavor == flavorPro {
		d = append(d, extra...)
	}
	d = append(d,
		"#PBS -N "+c.jobName(spec.Name),
		"#PBS -o "+logPath(spec.Dir),
		"#PBS -j oe",
		"#PBS -S /bin/sh",
		"#PBS -r n",
	)
	if r.Queue != "" {
		d = append(d, "#PBS -q "+r.Queue)
	}
	if r.Time > 0 {
		d = append(d, "#PBS -l walltime="+formatWalltime(r.Time))
	}
	switch c.flavor {
	case flavorPro:
		if r.CPUs > 1 || r.MemoryMB > 0 {
			sel := "select=1"
			if r.CPUs > 1 {
				sel += ":ncpus=" + strconv.Itoa(r.CPUs)
			}
			if r.MemoryMB > 0 {
				sel += ":mem=" + strconv.FormatInt(r.MemoryMB, 10) + "mb"
			}
			d = append(d, "#PBS -l "+sel)
		}
	case flavorTorque:
		if r.CPUs > 1 {
			d = append(d, "#PBS -l nodes=1:ppn="+strconv.Itoa(r.CPUs))
		}
		if r.MemoryMB > 0 {
			d = append(d, "#PBS -l mem="+strconv.FormatInt(r.MemoryMB, 10)+"mb")
		}
	}
	if r.Account != "" {
		d = append(d, "#PBS "+c.account+" "+r.Account)
	}
	if spec.Token != "" {
		d = append(d, "#PBS -v FERRY_TOKEN="+spec.Token)
	}
	if c.flavor == flavorTorque {
		d = append(d, extra...)
	}
	return d, nil
}

// jobName maps name to a PBS job name: parentheses are removed (as Nextflow does, so "align (1)"
// reads "align_1"), every other character outside [A-Za-z0-9._-] becomes '_', a name that does
// not start with a letter gets an "f" in front (PBS requires a leading letter), an empty name
// becomes "ferry", and the result is cut to the adapter's maximum length. Control characters are
// refused by Render before this runs.
func (c *core) jobName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '(' || r == ')':
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" {
		return "ferry"
	}
	if !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		s = "f" + s
	}
	if len(s) > c.maxName {
		s = s[:c.maxName]
	}
	return s
}

// formatWalltime renders d as HH:MM:SS, rounded up to whole seconds; hours are not wrapped into days.
func formatWalltime(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}

// checkDir accepts a task directory that qsub reads back as one -o path (adapter.CheckQsubDir).
// For Torque it also refuses every character outside [A-Za-z0-9/._,=+@-]: Slurm's Torque wrappers
// paste the -o value of the command line (see SubmitCommand) unquoted into a shell command, and
// sbatch expands '%' patterns in it.
func (c *core) checkDir(dir string) error {
	if err := adapter.CheckQsubDir(dir, "#PBS -o"); err != nil {
		return err
	}
	if c.flavor == flavorTorque {
		if i := strings.IndexFunc(dir, notTorqueSafe); i >= 0 {
			r, _ := utf8.DecodeRuneInString(dir[i:])
			return fmt.Errorf("task dir %q contains %q: for Torque only [A-Za-z0-9/._,=+@-] is allowed, because Slurm's Torque wrappers pass qsub -o through a shell", dir, r)
		}
	}
	return nil
}

// notTorqueSafe reports whether r is outside the characters a Torque task directory may hold.
func notTorqueSafe(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("/._,=+@-", r)
}

// logPath is the job's own output file, LogFile in the task directory dir.
func logPath(dir string) string {
	return strings.TrimRight(dir, "/") + "/" + scheduler.LogFile
}

// checkWord accepts a queue or account name that qsub reads back as one word.
func checkWord(field, v string) error {
	if v == "" {
		return nil
	}
	if adapter.HasControl(v) {
		return fmt.Errorf("%s %q contains a control character", field, v)
	}
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 || strings.ContainsAny(v, "\"'\\#") {
		return fmt.Errorf("%s %q contains whitespace, a quote, a backslash or '#', which a #PBS directive cannot carry", field, v)
	}
	return nil
}

// checkExtra accepts one Resources.Extra element: a single-letter qsub option ("-l gpus=1",
// "-W depend=afterok:12") on one line. It refuses the options that would break Ferry: job arrays
// (-J, -t: each task is its own job with its own .exitcode), the output files (-o, -e, -j, -k: the
// scheduler's log must stay in .command.log), the shell (-S: the wrapper needs sh), the directive
// prefix (-C: the following directives would be ignored), interactive jobs (-I, -X) and
// -W block=true (qsub would wait until the job ends).
func checkExtra(x string) error {
	if err := scheduler.CheckDirective(x); err != nil {
		return err
	}
	if len(x) < 2 || x[0] != '-' || !(x[1] >= 'a' && x[1] <= 'z' || x[1] >= 'A' && x[1] <= 'Z') {
		return fmt.Errorf("is not a qsub option (\"-x ...\")")
	}
	switch x[1] {
	case 'J', 't':
		return fmt.Errorf("job arrays are not supported: each task is its own job")
	case 'o', 'e', 'j', 'k':
		return fmt.Errorf("the job's output goes to %s; -o, -e, -j and -k cannot be overridden", scheduler.LogFile)
	case 'S':
		return fmt.Errorf("the wrapper needs /bin/sh; -S cannot be overridden")
	case 'C':
		return fmt.Errorf("-C changes the directive prefix, so Ferry's directives would be ignored")
	case 'I', 'X':
		return fmt.Errorf("interactive jobs are not supported")
	case 'W':
		if strings.Contains(strings.ToLower(x), "block") {
			return fmt.Errorf("-W block=true makes qsub wait for the job to end")
		}
	}
	return nil
}

// jobIDVar is the variable the scheduler sets to the job's id in the batch job's environment; the
// wrapper records it in .command.begin (scheduler.RenderWrapper).
const jobIDVar = "PBS_JOBID"
