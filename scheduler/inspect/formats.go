package inspect

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/ferryhpc/ferry/scheduler"
	"github.com/ferryhpc/ferry/scheduler/lsf"
	"github.com/ferryhpc/ferry/scheduler/moab"
	"github.com/ferryhpc/ferry/scheduler/pbs"
	"github.com/ferryhpc/ferry/scheduler/sge"
	"github.com/ferryhpc/ferry/scheduler/slurm"
)

// Format is one status or accounting output format that Main can read.
type Format struct {
	// Name is what --format takes ("squeue", "ferry-sacct").
	Name string
	// Description is one line: the command that prints the format.
	Description string
	// Detect reports whether the input looks like this format. It is a cheap first guess from the
	// first lines (a header, a delimiter, a leading '{'); Parse has the last word.
	Detect func(in []byte) bool
	// Parse reads the input with the scheduler package's own parser.
	Parse func(in []byte, opt Options) ([]scheduler.JobState, error)
}

// Options carries what a few formats need besides the input.
type Options struct {
	// IDs are the job ids named on the command line that printed the input, in order. Only
	// bjobs-json reads them, for records without a JOBID (an -o list without jobid).
	IDs []scheduler.JobID
}

// Scheduler is one scheduler Main knows: how its submit command's output is read, and its status
// formats in the order auto detection tries them (Ferry's own first).
type Scheduler struct {
	Kind string
	// Submit names the submit command whose output --output submit reads ("sbatch").
	Submit string
	// SubmitDescription is one line: the forms of submit output that are understood.
	SubmitDescription string
	// ParseSubmit is the adapter's own ParseSubmit.
	ParseSubmit func(stdout []byte) (scheduler.JobID, error)
	Formats     []Format
}

// Format returns the format called name, and whether there is one.
func (s *Scheduler) Format(name string) (Format, bool) {
	for _, f := range s.Formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// FormatNames returns the names of s's formats in detection order.
func (s *Scheduler) FormatNames() []string {
	names := make([]string, len(s.Formats))
	for i, f := range s.Formats {
		names[i] = f.Name
	}
	return names
}

// Kinds are the scheduler kinds Main knows, as the configuration names them.
var Kinds = []string{"slurm", "pbspro", "torque", "lsf", "sge", "moab"}

// Lookup returns the scheduler of kind, and whether Main knows it.
func Lookup(kind string) (*Scheduler, bool) {
	for i := range registry {
		if registry[i].Kind == kind {
			return &registry[i], true
		}
	}
	return nil, false
}

// exampleUser and exampleIDs are the placeholders the descriptions show Ferry's commands with.
const exampleUser = "USER"

var exampleIDs = []scheduler.JobID{"ID1", "ID2"}

// commandLine renders c as the command line an administrator can paste to reproduce the output.
func commandLine(c scheduler.Command) string {
	s, err := scheduler.CommandLine(c)
	if err != nil {
		return strings.Join(c.Argv, " ")
	}
	return s
}

// plain adapts a package parser to Format.Parse.
func plain(p func([]byte) ([]scheduler.JobState, error)) func([]byte, Options) ([]scheduler.JobState, error) {
	return func(in []byte, _ Options) ([]scheduler.JobState, error) { return p(in) }
}

// registry holds every scheduler, built once from the adapters with their default options. The
// options change what Ferry sends, not how output is read; the one exception, PBS Pro's History,
// only turns a status answer without any job into pbs.ErrNoHistory, which says nothing about the
// format.
var registry = []Scheduler{slurmFormats(), pbsProFormats(), torqueFormats(), lsfFormats(), sgeFormats(), moabFormats()}

func slurmFormats() Scheduler {
	a := slurm.New(slurm.Options{})
	return Scheduler{
		Kind:              "slurm",
		Submit:            "sbatch",
		SubmitDescription: "sbatch output: \"Submitted batch job N [on cluster C]\" or --parsable \"N[;C]\", after any warning lines",
		ParseSubmit:       a.ParseSubmit,
		Formats: []Format{
			{
				Name:        "ferry-squeue",
				Description: "Ferry's status query: " + commandLine(a.StatusCommand(exampleUser, exampleIDs)),
				Detect:      detectFerrySqueue,
				Parse:       plain(a.ParseStatus),
			},
			{
				Name:        "ferry-sacct",
				Description: "Ferry's accounting query: " + commandLine(a.AccountingCommand(exampleUser, exampleIDs)),
				Detect:      detectFerrySacct,
				Parse:       plain(a.ParseAccounting),
			},
			{
				Name:        "squeue",
				Description: "squeue with its header: the default layout, -l, -M, or any -o/--format whose header names JOBID and ST or STATE",
				Detect:      detectSqueue,
				Parse:       plain(slurm.ParseSqueueTable),
			},
			{
				Name:        "squeue-id-state",
				Description: "headerless squeue -o '%i %t' (or '%i %T'): one job id and its state per line, as the most used workflow executor asks for",
				Detect:      detectSqueueIDState,
				Parse:       plain(slurm.ParseSqueueIDState),
			},
			{
				Name:        "sacct-parsable",
				Description: "sacct -P (--parsable2) or --parsable with its header line naming JobID and State",
				Detect:      detectSacctParsable,
				Parse:       plain(slurm.ParseSacctParsable),
			},
			{
				Name:        "sacct",
				Description: "sacct's default fixed-width table: a header naming JobID and State over a line of dashes",
				Detect:      detectSacctTable,
				Parse:       plain(slurm.ParseSacctTable),
			},
			{
				Name:        "scontrol",
				Description: "scontrol show job, multi-line or -o (one line per job)",
				Detect:      detectScontrol,
				Parse:       plain(slurm.ParseScontrolShowJob),
			},
		},
	}
}

func pbsProFormats() Scheduler {
	a := pbs.NewPro(pbs.Options{})
	return Scheduler{
		Kind:              "pbspro",
		Submit:            "qsub",
		SubmitDescription: "qsub output: the id (\"N.server\", \"N[].server\") or \"qsub: waiting for job ID to start\", after any warning lines",
		ParseSubmit:       a.ParseSubmit,
		Formats: []Format{
			{
				Name: "ferry-qstat-json",
				Description: "Ferry's status query: " + commandLine(a.StatusCommand(exampleUser, exampleIDs)) +
					" (accounting adds -x: " + commandLine(a.AccountingCommand(exampleUser, exampleIDs)) + ")",
				Detect: detectQstatJSON,
				Parse:  plain(a.ParseStatus),
			},
			{
				Name:        "qstat-json",
				Description: "qstat -f -F json, with or without -x (PBS Pro 14.1+, OpenPBS)",
				Detect:      detectQstatJSON,
				Parse:       plain(pbs.ParseQstatJSON),
			},
			{
				Name:        "qstat-f",
				Description: "qstat -f text, with or without -1 and -x (\"Job Id:\" then \"    name = value\" lines)",
				Detect:      detectQstatFull,
				Parse:       plain(pbs.ParseQstatFull),
			},
			{
				Name:        "qstat",
				Description: "qstat's tables: the default layout and the alternate one of -a, -u, -T, -n, -s (ids cut as printed)",
				Detect:      detectPBSTable,
				Parse:       plain(pbs.ParseQstatTable),
			},
		},
	}
}

func torqueFormats() Scheduler {
	a := pbs.NewTorque(pbs.Options{})
	return Scheduler{
		Kind:              "torque",
		Submit:            "qsub",
		SubmitDescription: "qsub output: the id (\"N.server\", \"N[].server\"), after any warning lines",
		ParseSubmit:       a.ParseSubmit,
		Formats: []Format{
			{
				// Torque has no accounting query (see pbs.Torque) and no JSON output (its -x is XML).
				Name:        "ferry-qstat-f",
				Description: "Ferry's status query: " + commandLine(a.StatusCommand(exampleUser, exampleIDs)),
				Detect:      detectQstatFull,
				Parse:       plain(a.ParseStatus),
			},
			{
				Name:        "qstat-f",
				Description: "qstat -f text, with or without -1 (\"Job Id:\" then \"    name = value\" lines)",
				Detect:      detectQstatFull,
				Parse:       plain(pbs.ParseQstatFull),
			},
			{
				Name:        "qstat",
				Description: "qstat's tables: the default layout and the alternate one of -a, -u, -n, -s (ids cut as printed)",
				Detect:      detectPBSTable,
				Parse:       plain(pbs.ParseQstatTable),
			},
		},
	}
}

func lsfFormats() Scheduler {
	a := lsf.New(lsf.Options{})
	return Scheduler{
		Kind:              "lsf",
		Submit:            "bsub",
		SubmitDescription: "bsub output: \"Job <N> is submitted to [default] queue <q>.\", after any other lines",
		ParseSubmit:       a.ParseSubmit,
		Formats: []Format{
			{
				Name:        "ferry-bjobs",
				Description: "Ferry's status query: " + commandLine(a.StatusCommand(exampleUser, exampleIDs)),
				Detect:      detectFerryBjobs,
				Parse:       plain(a.ParseStatus),
			},
			{
				Name:        "ferry-bhist",
				Description: "Ferry's accounting query: " + commandLine(a.AccountingCommand(exampleUser, exampleIDs)),
				Detect:      detectBhistLong,
				Parse:       plain(a.ParseAccounting),
			},
			{
				Name:        "bjobs",
				Description: "bjobs' table, with or without -w, -W and -a (header JOBID USER STAT QUEUE ...)",
				Detect:      detectBjobsTable,
				Parse:       plain(lsf.ParseBjobsTable),
			},
			{
				Name:        "bjobs-json",
				Description: "bjobs -json (LSF 10.1+); with an -o list that lacks jobid, pass the command's ids with --ids",
				Detect:      detectBjobsJSON,
				Parse: func(in []byte, opt Options) ([]scheduler.JobState, error) {
					if opt.IDs != nil {
						return lsf.ParseBjobsJSONFor(opt.IDs, in)
					}
					return lsf.ParseBjobsJSON(in)
				},
			},
			{
				Name:        "bjobs-l",
				Description: "bjobs -l (long format, wrapped at 80 columns)",
				Detect:      detectBjobsLong,
				Parse:       plain(lsf.ParseBjobsLong),
			},
		},
	}
}

func sgeFormats() Scheduler {
	a := sge.New(sge.Options{})
	return Scheduler{
		Kind:              "sge",
		Submit:            "qsub",
		SubmitDescription: "qsub output: -terse's bare id (\"N\", \"N.1-10:1\") or \"Your job N (\"name\") has been submitted\"",
		ParseSubmit:       a.ParseSubmit,
		Formats: []Format{
			{
				Name:        "ferry-qstat-xml",
				Description: "Ferry's status query: " + commandLine(a.StatusCommand(exampleUser, exampleIDs)),
				Detect:      detectQstatXML,
				Parse:       plain(a.ParseStatus),
			},
			{
				Name:        "ferry-qacct",
				Description: "Ferry's accounting query: " + commandLine(a.AccountingCommand(exampleUser, exampleIDs)),
				Detect:      detectQacct,
				Parse:       plain(a.ParseAccounting),
			},
			{
				Name:        "qstat",
				Description: "qstat's plain table (header job-ID prior name user state ..., Univa's jclass column included)",
				Detect:      detectSGETable,
				Parse:       plain(sge.ParseQstatTable),
			},
			{
				Name:        "qstat-xml",
				Description: "qstat -xml with any of -u, -ext, -urg, -pri, -f, -F",
				Detect:      detectQstatXML,
				Parse:       plain(sge.ParseQstatXML),
			},
			{
				Name:        "qacct",
				Description: "qacct -j [ID] (records after lines of '='); state is \"failed N\", qacct's failure code",
				Detect:      detectQacct,
				Parse:       plain(sge.ParseQacct),
			},
		},
	}
}

func moabFormats() Scheduler {
	a := moab.New(moab.Options{})
	return Scheduler{
		Kind:              "moab",
		Submit:            "msub",
		SubmitDescription: "msub output: the id (\"N\" or \"Moab.N\") after a blank line (formats from the Moab documentation, not yet checked against a real Moab)",
		ParseSubmit:       a.ParseSubmit,
		Formats: []Format{
			{
				Name:        "ferry-showq-xml",
				Description: "Ferry's status query: " + commandLine(a.StatusCommand(exampleUser, exampleIDs)),
				Detect:      detectMoabXML,
				Parse:       plain(a.ParseStatus),
			},
			{
				Name:        "ferry-checkjob-xml",
				Description: "Ferry's accounting query: checkjob --xml ID, once per id, the <Data> documents one after the other",
				Detect:      detectMoabXML,
				Parse:       plain(a.ParseAccounting),
			},
		},
	}
}

// Detection. Every detector looks only at the first few non-blank lines, so it is cheap on any
// input; none of them decides alone, because a detected format that fails to parse lets the next
// detected one try.

// headLines returns up to n non-blank lines of in, without "\r", with their 1-based numbers.
func headLines(in []byte, n int) (lines []string, nos []int) {
	no := 0
	for len(in) > 0 && len(lines) < n {
		no++
		var l []byte
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			l, in = in[:i], in[i+1:]
		} else {
			l, in = in, nil
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		lines = append(lines, string(l))
		nos = append(nos, no)
	}
	return lines, nos
}

// firstLine returns the first non-blank line of in, or "".
func firstLine(in []byte) string {
	l, _ := headLines(in, 1)
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

var (
	slurmCompact  = regexp.MustCompile(`^[A-Z?]{1,3}$`)
	slurmLongWord = regexp.MustCompile(`^[A-Z_]+\+?( by [0-9]+)?$`)
	slurmExit     = regexp.MustCompile(`^-?[0-9]+:[0-9]+$`)
	lsfID         = regexp.MustCompile(`^[0-9]+(\[[0-9]+\])?$`)
	lsfStat       = regexp.MustCompile(`^[A-Z_]+$`)
	lsfExit       = regexp.MustCompile(`^(-|-?[0-9]+)$`)
)

// startsWithDigit reports whether s, trimmed, starts with a digit and holds no blank.
func startsWithDigit(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, " \t")
}

// detectFerrySqueue: '|'-separated, at least 9 fields, an id and a compact state code first
// ("26|PD|Dependency|debug|root|...").
func detectFerrySqueue(in []byte) bool {
	f := strings.Split(firstLine(in), "|")
	return len(f) >= 9 && startsWithDigit(f[0]) && slurmCompact.MatchString(f[1])
}

// detectSqueueIDState: every one of the first lines is two blank-separated words, a job id
// starting with a digit and an upper-case state ("5753_[3-4%2] PD", "12 RUNNING").
func detectSqueueIDState(in []byte) bool {
	lines, _ := headLines(in, 5)
	if len(lines) == 0 {
		return false
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 || !startsWithDigit(f[0]) || !(slurmCompact.MatchString(f[1]) || slurmLongWord.MatchString(f[1])) {
			return false
		}
	}
	return true
}

// detectFerrySacct: '|'-separated, at least 10 fields, an id, a long state name and an exit code
// first ("16|TIMEOUT|0:0|None|debug|...").
func detectFerrySacct(in []byte) bool {
	f := strings.Split(firstLine(in), "|")
	return len(f) >= 10 && startsWithDigit(f[0]) && slurmLongWord.MatchString(f[1]) && slurmExit.MatchString(f[2])
}

// headerNames splits a header line on '\x1f', '|' or blanks, as squeue and sacct print it.
func headerNames(line string) []string {
	line = strings.TrimPrefix(line, "\x1e")
	var names []string
	switch {
	case strings.Contains(line, "\x1f"):
		names = strings.Split(line, "\x1f")
	case strings.Contains(line, "|"):
		names = strings.Split(line, "|")
	default:
		names = strings.Fields(line)
	}
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	return names
}

func hasName(names []string, fold bool, want ...string) bool {
	for _, n := range names {
		for _, w := range want {
			if n == w || fold && strings.EqualFold(n, w) {
				return true
			}
		}
	}
	return false
}

// detectSqueue: the first line (after squeue -M's "CLUSTER:" lines) is a header naming JOBID and ST
// or STATE, in squeue's upper case.
func detectSqueue(in []byte) bool {
	lines, _ := headLines(in, 3)
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "CLUSTER:") {
			continue
		}
		n := headerNames(l)
		return hasName(n, false, "JOBID") && hasName(n, false, "ST", "STATE")
	}
	return false
}

// detectSacctParsable: the first line is a '|'-separated header naming JobID (or JobIDRaw) and
// State.
func detectSacctParsable(in []byte) bool {
	l := firstLine(in)
	if !strings.Contains(l, "|") {
		return false
	}
	n := strings.Split(l, "|")
	return hasName(n, true, "JobID", "JobIDRaw") && hasName(n, true, "State")
}

// isRule reports whether l is a line of dashes (and blanks) only.
func isRule(l string) bool {
	t := strings.TrimSpace(l)
	return t != "" && strings.Trim(t, "- ") == ""
}

// detectSacctTable: a header naming JobID and State, then a line of dashes.
func detectSacctTable(in []byte) bool {
	lines, _ := headLines(in, 2)
	if len(lines) < 2 || !isRule(lines[1]) {
		return false
	}
	n := strings.Fields(lines[0])
	return hasName(n, true, "JobID", "JobIDRaw") && hasName(n, true, "State")
}

// detectScontrol: the first line starts with JobId= (or says there are no jobs).
func detectScontrol(in []byte) bool {
	t := strings.TrimSpace(firstLine(in))
	return strings.HasPrefix(t, "JobId=") || t == "No jobs in the system"
}

// detectQstatJSON: a JSON object from qstat (it names the PBS version or holds "Jobs").
func detectQstatJSON(in []byte) bool {
	t := bytes.TrimSpace(in)
	return len(t) > 0 && t[0] == '{' && (bytes.Contains(t, []byte(`"pbs_version"`)) || bytes.Contains(t, []byte(`"Jobs"`)))
}

// detectQstatFull: the first line is "Job Id: ...".
func detectQstatFull(in []byte) bool {
	return strings.HasPrefix(firstLine(in), "Job Id:")
}

// detectPBSTable: among the first lines, a header starting with "Job id"/"Job ID" directly over a
// line of dashes (after the "server:" and "Req'd" lines of the alternate layout).
func detectPBSTable(in []byte) bool {
	lines, _ := headLines(in, 8)
	for i := 1; i < len(lines); i++ {
		if isRule(lines[i]) && len(strings.Fields(lines[i])) >= 4 &&
			strings.HasPrefix(strings.ToLower(strings.TrimSpace(lines[i-1])), "job id") {
			return true
		}
	}
	return false
}

// detectFerryBjobs: '|'-separated, at least 11 fields, a job id, a status word and an exit code
// ("-" or a number) in Ferry's field order ("101|RUN|normal|alice|-|...").
func detectFerryBjobs(in []byte) bool {
	f := strings.Split(firstLine(in), "|")
	return len(f) >= 11 && lsfID.MatchString(strings.TrimSpace(f[0])) && lsfStat.MatchString(strings.TrimSpace(f[1])) &&
		lsfExit.MatchString(strings.TrimSpace(f[4]))
}

// longHeader returns the first paragraph of bjobs -l or bhist -l output with LSF's 80-column
// wrapping undone, or "" when the first line is not "Job <...".
func longHeader(in []byte) string {
	lines, _ := headLines(in, 12)
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "Job <") {
		return ""
	}
	h := lines[0]
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "                    ") {
			break
		}
		h += strings.TrimLeft(l, " ")
	}
	return h
}

// detectBjobsLong: "Job <N>, ..." whose first paragraph has a Status (bjobs -l).
func detectBjobsLong(in []byte) bool {
	h := longHeader(in)
	return h != "" && strings.Contains(h, "Status <")
}

// detectBhistLong: "Job <N>, ..." without a Status (bhist -l prints none).
func detectBhistLong(in []byte) bool {
	h := longHeader(in)
	return h != "" && !strings.Contains(h, "Status <")
}

// detectBjobsTable: the header JOBID USER STAT QUEUE, after any "LSF is processing" notices.
func detectBjobsTable(in []byte) bool {
	lines, _ := headLines(in, 4)
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "LSF is processing") {
			continue
		}
		f := strings.Fields(l)
		return len(f) >= 4 && f[0] == "JOBID" && f[1] == "USER" && f[2] == "STAT" && f[3] == "QUEUE"
	}
	return false
}

// detectBjobsJSON: a JSON object with bjobs' "RECORDS".
func detectBjobsJSON(in []byte) bool {
	t := bytes.TrimSpace(in)
	return len(t) > 0 && t[0] == '{' && bytes.Contains(t, []byte(`"RECORDS"`))
}

// detectQstatXML: an XML declaration or qstat's <job_info> root.
func detectQstatXML(in []byte) bool {
	t := bytes.TrimSpace(in)
	return bytes.HasPrefix(t, []byte("<?xml")) || bytes.HasPrefix(t, []byte("<job_info"))
}

// detectMoabXML: Moab's XML, a <Data> document.
func detectMoabXML(in []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(in), []byte("<Data>"))
}

// detectQacct: the first line is qacct's record separator, a line of '='.
func detectQacct(in []byte) bool {
	t := strings.TrimSpace(firstLine(in))
	return len(t) >= 10 && strings.Trim(t, "=") == ""
}

// detectSGETable: the first line is the "job-ID prior name ..." header.
func detectSGETable(in []byte) bool {
	return strings.HasPrefix(strings.TrimSpace(firstLine(in)), "job-ID")
}
