package inspect

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/config"
)

// TestOutputShape pins the exact bytes parse prints: field order id, state, status, one line.
func TestOutputShape(t *testing.T) {
	for _, tc := range []struct {
		name, scheduler, output, in, want string
	}{
		{"status", "slurm", "status", "26|PD|Dependency|debug|root|1795906987|N/A|N/A|fx-dep\n",
			`{"jobs":[{"id":"26","state":"PD","status":"pending"}]}` + "\n"},
		{"decoration removed", "slurm", "status", "22|CANCELLED by 0|0:0|None|debug|root|1|2|3|fx\n",
			`{"jobs":[{"id":"22","state":"CANCELLED","status":"cancelled"}]}` + "\n"},
		{"brackets unescaped", "slurm", "status", "JOBID ST\n1080_[5-1024] PD\n",
			`{"jobs":[{"id":"1080_[5-1024]","state":"PD","status":"pending"}]}` + "\n"},
		{"unknown state", "slurm", "status", "JOBID ST\n7 XX\n",
			`{"jobs":[{"id":"7","state":"XX","status":"unknown"}]}` + "\n"},
		{"no jobs", "sge", "status", "<?xml version='1.0'?>\n<job_info>\n  <queue_info>\n  </queue_info>\n  <job_info>\n  </job_info>\n</job_info>\n",
			`{"jobs":[]}` + "\n"},
		{"empty input", "lsf", "status", "\n \n", `{"jobs":[]}` + "\n"},
		{"submit", "lsf", "submit", "Job <607844> is submitted to queue <medium>.\n", `{"id":"607844"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, []byte(tc.in), "parse", "--scheduler", tc.scheduler, "--output", tc.output)
			require.Equal(t, 0, code, stderr)
			require.Equal(t, tc.want, stdout)
			require.Empty(t, stderr)
		})
	}
}

// TestFerryFormats reads the formats Ferry's own queries print, in samples of their exact layout,
// and checks auto detection picks the Ferry format. (The manifests hold real captures of most of
// them; these are the ones without.)
func TestFerryFormats(t *testing.T) {
	for _, tc := range []struct {
		scheduler, format, in string
		want                  []string // id=state=status
	}{
		{"slurm", "ferry-squeue",
			"18|R|None|debug|root|1795906986|1795906987|NONE|fx|run\n19|S|None|debug|root|1795906986|1795906987|NONE|fx-susp\n",
			[]string{"18=R=running", "19=S=held"}},
		{"slurm", "ferry-sacct",
			"16|TIMEOUT|0:0|None|debug|root|1795906941|1795906941|1795907011|fx-timeout\n22|CANCELLED by 0|0:0|None|debug|root|1|2|3|fx\n",
			[]string{"16=TIMEOUT=timeout", "22=CANCELLED=cancelled"}},
		{"pbspro", "ferry-qstat-json",
			"{\n    \"timestamp\":1,\n    \"pbs_version\":\"23.06.06\",\n    \"pbs_server\":\"pbs\",\n    \"Jobs\":{\n        \"12.pbs\":{\n            \"job_state\":\"F\",\n            \"substate\":91,\n            \"Exit_status\":271\n        }\n    }\n}\n",
			[]string{"12.pbs=F=cancelled"}},
		{"torque", "ferry-qstat-f",
			"Job Id: 40.srv\n    Job_Name = x\n    job_state = C\n    exit_status = -11\n",
			[]string{"40.srv=C=timeout"}},
		{"lsf", "ferry-bjobs",
			"101|RUN|normal|alice|-|-|-|Jun 14 10:00|Jun 14 10:05 L|-|nf-a\n" +
				"103|EXIT|short|alice|140|TERM_RUNLIMIT: job killed after reaching LSF run time limit|-|Dec 31 23:00|Dec 31 23:30|Jan  1 00:30|b\n" +
				"104|EXIT|short|alice|130|TERM_OWNER: job killed by owner|-|Jun 14 10:00|Jun 14 10:01|Jun 14 10:02|name|with|bars\n",
			[]string{"101=RUN=running", "103=EXIT=timeout", "104=EXIT=cancelled"}},
		{"lsf", "ferry-bhist", bhistSample, []string{"872795=DONE=completed", "873300=EXIT=timeout"}},
		{"sge", "ferry-qstat-xml",
			"<?xml version='1.0'?>\n<job_info>\n  <queue_info>\n    <job_list state=\"running\">\n      <JB_job_number>7</JB_job_number>\n      <state>r</state>\n    </job_list>\n  </queue_info>\n  <job_info>\n    <job_list state=\"pending\">\n      <JB_job_number>8</JB_job_number>\n      <state>Eqw</state>\n      <tasks>1-10:2</tasks>\n    </job_list>\n  </job_info>\n</job_info>\n",
			[]string{"7=r=running", "8.1-10:2=Eqw=held"}},
		{"sge", "ferry-qacct", qacctSample, []string{"1001=failed 0=completed", "1003=failed 37=timeout", "1005=failed 1=cancelled"}},
	} {
		t.Run(tc.scheduler+"/"+tc.format, func(t *testing.T) {
			for _, f := range []string{"auto", tc.format} {
				code, stdout, stderr := run(t, []byte(tc.in), "parse", "--scheduler", tc.scheduler, "--output", "status", "--format", f, "-v")
				require.Equal(t, 0, code, stderr)
				require.Equal(t, "ferry scheduler parse: read as "+tc.scheduler+" "+tc.format+"\n", stderr)
				var out statusJSON
				require.NoError(t, json.Unmarshal([]byte(stdout), &out))
				var got []string
				for _, j := range out.Jobs {
					got = append(got, j.ID+"="+j.State+"="+j.Status)
				}
				require.Equal(t, tc.want, got, "--format %s", f)
			}
		})
	}
}

// bhistSample is bhist -l in LSF 10's layout: wrapped at column 80 with 21-space continuations.
const bhistSample = `
Job <872795>, User <rasko>, Project <default>, Command <echo hello>, Esub <esub
                     >
Sun Jan 10 17:47:38: Submitted from host <noah-login-01>, to Queue <research-rh
                     74>, CWD <$HOME>;
Sun Jan 10 17:47:39: Dispatched to <hx-noah-05-14>;
Sun Jan 10 17:47:39: Starting (Pid 110245);
Sun Jan 10 17:47:39: Done successfully. The CPU time used is 0.0 seconds;

Summary of time in seconds spent in various states by  Sun Jan 10 17:47:40
  PEND     PSUSP    RUN      USUSP    SSUSP    UNKWN    TOTAL
  1        0        0        0        0        0        1
------------------------------------------------------------------------------

Job <873300>, User <rasko>, Project <default>, Command <sleep 999>
Sun Jan 10 18:00:00: Submitted from host <noah-login-01>, to Queue <short>, CWD <$HOME>;
Sun Jan 10 18:00:01: Dispatched to <hx-noah-10-04>;
Sun Jan 10 18:11:02: Exited with exit code 140. The CPU time used is 0.0 seconds;
Sun Jan 10 18:11:02: Completed <exit>; TERM_RUNLIMIT: job killed after reaching LSF run time limit.
------------------------------------------------------------------------------
`

// qacctSample is qacct -j in Son of Grid Engine's layout.
const qacctSample = `==============================================================
qname        all.q
owner        alice
jobname      nf-align
jobnumber    1001
taskid       undefined
qsub_time    03/21/2019 10:49:30.588
start_time   03/21/2019 10:50:00.000
end_time     03/21/2019 10:51:00.000
failed       0
exit_status  0
==============================================================
owner        alice
jobnumber    1003
failed       37  : qmaster enforced h_rt limit
exit_status  0
==============================================================
owner        bob
jobnumber    1005
failed       1       : failed before job (no such queue)
deleted_by   root
exit_status  0
`

// TestGarbage feeds input no format can read: exit 1, nothing on stdout, and a message on stderr
// that starts with the command and names the line.
func TestGarbage(t *testing.T) {
	for _, tc := range []struct {
		name, scheduler, output, format, in, want string
	}{
		{"slurm auto", "slurm", "status", "auto", "\nhello world\n", `line 2 "hello world"; tried ferry-squeue, ferry-sacct, squeue, squeue-id-state, sacct-parsable, sacct, scontrol`},
		{"slurm squeue bad row", "slurm", "status", "auto", "JOBID ST NAME\n1 R a\n2\n", "squeue line 3 has 1 fields"},
		{"slurm ferry-squeue short row", "slurm", "status", "ferry-squeue", "1|R|x|p|u|1|2|3|n\n2|R\n", "squeue line 2 has 2 fields"},
		{"slurm scontrol", "slurm", "status", "scontrol", "JobId=1 JobState=R\n\nnot a record\n", "scontrol line 3"},
		{"pbspro auto", "pbspro", "status", "auto", "%%%\n", `line 1 "%%%"; tried ferry-qstat-json, qstat-json, qstat-f, qstat`},
		{"pbspro qstat-f", "pbspro", "status", "qstat-f", "garbage\nJob Id: 1\n", "qstat -f line 1"},
		{"pbspro qstat no header", "pbspro", "status", "qstat", "\n1.srv R\n", `no table header (a row of column names over a line of dashes): unparseable scheduler output (input line 2: "1.srv R")`},
		{"pbspro json", "pbspro", "status", "auto", "{\n\"pbs_version\":\"1\",\n\"Jobs\":{\n\"1.s\":{\"job_state\":\n", "line "},
		{"torque json", "torque", "status", "auto", `{"pbs_version":"19","Jobs":{}}`, `line 1 "{\"pbs_version\"`},
		{"lsf auto", "lsf", "status", "auto", "nothing here\n", `line 1 "nothing here"; tried ferry-bjobs, ferry-bhist, bjobs, bjobs-json, bjobs-l`},
		{"lsf ferry-bjobs", "lsf", "status", "ferry-bjobs", "1|RUN|q|u|-|-|-|-|-|-|n\nx|y\n", "bjobs line 2"},
		{"lsf bjobs table", "lsf", "status", "auto", "JOBID USER STAT QUEUE FROM_HOST\nabc u RUN q h\n", "bjobs line 2"},
		{"lsf bjobs-json", "lsf", "status", "auto", "{\n\"RECORDS\":[\n{\"JOBID\":\n", "bjobs JSON line"},
		{"sge auto", "sge", "status", "auto", "+++\n", `line 1 "+++"; tried ferry-qstat-xml, ferry-qacct, qstat, qstat-xml, qacct`},
		{"sge xml", "sge", "status", "auto", "<?xml version='1.0'?>\n<job_info>\n<job_list>\n<state>r</state>\n</job_list>\n</job_info>\n", "qstat XML job on line 3"},
		{"sge qacct", "sge", "status", "qacct", "owner alice\n", "qacct line 1"},
		{"sge qstat", "sge", "status", "auto", "job-ID prior name\n------\n12 x\n", "qstat line 3"},
		{"slurm submit", "slurm", "submit", "auto", "sbatch: error: nope\n", `last line "sbatch: error: nope"`},
		{"pbspro submit", "pbspro", "submit", "qsub", "qsub: Unknown queue\n", "qsub: Unknown queue"},
		{"lsf submit", "lsf", "submit", "auto", "\n", "bsub printed nothing"},
		{"sge submit", "sge", "submit", "auto", "Unable to run job: no queue.\n", "Unable to run job: no queue."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, []byte(tc.in), "parse", "--scheduler", tc.scheduler, "--output", tc.output, "--format", tc.format)
			require.Equal(t, 1, code, "stdout %q stderr %q", stdout, stderr)
			require.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, "ferry scheduler parse: "), stderr)
			require.True(t, strings.HasSuffix(stderr, "\n"), stderr)
			require.Contains(t, stderr, tc.want)
		})
	}
}

// TestTooLarge checks that parse refuses input beyond MaxInput instead of buffering it.
func TestTooLarge(t *testing.T) {
	in := make([]byte, MaxInput+1)
	code, stdout, stderr := run(t, in, "parse", "--scheduler", "slurm", "--output", "status")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "larger than 64 MiB")
}

// TestUsage checks bad usage exits 2 with the usage on stderr, and -h prints it on stdout.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"no scheduler", []string{"parse", "--output", "status"}, "--scheduler is required"},
		{"unknown scheduler", []string{"parse", "--scheduler", "condor", "--output", "status"}, `unknown scheduler "condor"`},
		{"no output", []string{"parse", "--scheduler", "slurm"}, "--output is required"},
		{"unknown output", []string{"parse", "--scheduler", "slurm", "--output", "jobs"}, `unknown --output "jobs"`},
		{"unknown format", []string{"parse", "--scheduler", "slurm", "--output", "status", "--format", "qstat"}, `slurm has no status format "qstat" (one of auto, ferry-squeue`},
		{"status format for submit", []string{"parse", "--scheduler", "lsf", "--output", "submit", "--format", "bjobs"}, "--format is auto or bsub"},
		{"unknown flag", []string{"parse", "--scheduler", "slurm", "--output", "status", "--bogus"}, "flag provided but not defined: -bogus"},
		{"flag without value", []string{"parse", "--scheduler"}, "flag needs an argument"},
		{"stray argument", []string{"parse", "--scheduler", "slurm", "--output", "status", "file.txt"}, `unexpected argument "file.txt"`},
		{"formats unknown scheduler", []string{"formats", "--scheduler", "condor"}, `unknown scheduler "condor"`},
		{"formats stray argument", []string{"formats", "slurm"}, `unexpected argument "slurm"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, nil, tc.args...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			require.Contains(t, stderr, tc.want)
			require.Contains(t, stderr, "Usage:\n  ferry scheduler parse")
		})
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"parse", "-h"}, {"formats", "--help"}} {
		code, stdout, stderr := run(t, nil, args...)
		require.Equal(t, 0, code, "%v", args)
		require.Contains(t, stdout, "Usage:\n  ferry scheduler parse", "%v", args)
		require.Empty(t, stderr, "%v", args)
	}
}

// TestFormatsList checks formats names every format of every scheduler with its description, and
// only the asked scheduler's with --scheduler.
func TestFormatsList(t *testing.T) {
	code, stdout, stderr := run(t, nil, "formats")
	require.Equal(t, 0, code, stderr)
	for _, k := range Kinds {
		s, ok := Lookup(k)
		require.True(t, ok)
		require.Contains(t, stdout, k+" status formats")
		require.Contains(t, stdout, s.Submit+"  "+s.SubmitDescription)
		for _, f := range s.Formats {
			require.NotEmpty(t, f.Description, "%s %s", k, f.Name)
			require.NotContains(t, f.Description, "\n", "%s %s", k, f.Name)
			require.Regexp(t, `(?m)^  `+f.Name+` +`+regexp.QuoteMeta(f.Description)+`$`, stdout)
		}
	}

	code, stdout, stderr = run(t, nil, "formats", "--scheduler", "torque")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "torque status formats")
	require.Contains(t, stdout, "ferry-qstat-f  Ferry's status query: qstat -f -1 ID1 ID2\n")
	require.NotContains(t, stdout, "slurm")
}

// TestRegistry checks the tables hold what Main relies on: known kinds, unique names that cannot be
// mistaken for auto or a submit format, and a detector and parser for each format.
func TestRegistry(t *testing.T) {
	require.Len(t, registry, len(Kinds))
	for _, k := range Kinds {
		s, ok := Lookup(k)
		require.True(t, ok, k)
		require.NotNil(t, s.ParseSubmit, k)
		names := map[string]bool{"auto": true, s.Submit: true}
		for _, f := range s.Formats {
			require.False(t, names[f.Name], "%s: format name %q repeats auto, the submit format or another format", k, f.Name)
			names[f.Name] = true
			require.NotNil(t, f.Detect, "%s %s", k, f.Name)
			require.NotNil(t, f.Parse, "%s %s", k, f.Name)
			require.False(t, f.Detect(nil), "%s %s detects empty input", k, f.Name)
		}
	}
	_, ok := Lookup("condor")
	require.False(t, ok)
	require.Equal(t, config.Schedulers, Kinds, "every scheduler kind the configuration accepts can be inspected")
}
