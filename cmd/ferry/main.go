// Command ferry is Ferry's single binary: the agent daemon, the go-plugin server a launcher starts,
// and the CLI that talks to a running agent.
package main

import (
	"github.com/ferryhpc/ferry/scheduler/inspect"

	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `ferry runs workflow tasks on HPC clusters as each user, over per-user SSH pools.

Usage:
  ferry agent  --config FILE                 run the long-running agent (launchers attach to it,
                                             the CLI reaches it on its socket)
  ferry plugin --config FILE                 serve a launcher that started ferry (go-plugin)

Jobs:
  ferry submit [flags] SCRIPT                submit SCRIPT as a user; prints the job id
  ferry jobs   [--identity I] [--user U] [--active] [--json] [--watch]
  ferry cancel ID...                         cancel jobs

Managed identities (owners create, edit and delete them):
  ferry identity add NAME --scheduler S --host H [--port N] --workdir DIR --group G
                     [--known-hosts LINE | --known-hosts-file F] [--jump USER@HOST:PORT] [--yes]
                     [--jump-key FILE [--jump-passphrase-file F]]   scan the login node's key
                     through the jump host (the key is used once, never stored)
  ferry identity edit NAME [the same flags] [--force] [--accept-host-key]
  ferry identity list
  ferry identity show NAME
  ferry identity delete NAME
  ferry identity test NAME [--user MEMBER]   log in as each member and check group and work dir

Organisation members (owners only):
  ferry member add NAME --role owner|member [--unix-user U]...
  ferry member list
  ferry member remove NAME
  ferry member invite NAME                  one-time link for NAME to set a web console password (owners)
  ferry member passwd NAME [--password-file F]   set NAME's web console password (owners; members their own)

Credentials (members manage their own; owners anyone's):
  ferry creds add|edit --identity I --member M --username U --key-file F|-
                     [--passphrase-file F | --ask-passphrase]   (or FERRY_PASSPHRASE in the env)
  ferry creds delete --identity I --member M
  ferry creds list [--identity I]

Operations:
  ferry keys rotate                          re-seal every secret under a new key-encryption key
  ferry audit [--since 24h|TIME] [--until TIME] [--actor A] [--identity I] [--subject S]
              [--action PREFIX] [--outcome O] [--limit N]
  ferry pools                                SSH pool statistics
  ferry scheduler parse --scheduler slurm|pbspro|torque|lsf|sge|moab --output submit|status
                        [--format NAME|auto] < FILE    check how Ferry reads your site's output
  ferry scheduler formats [--scheduler S]    list the output formats Ferry reads
  ferry version

Listing commands print tables; --json prints one JSON document instead (jobs: one per line).

The CLI reaches the agent on its Unix socket, which tells the agent who you are (your Unix user is
mapped to an organisation member; root is an owner): --socket PATH, else $FERRY_SOCKET, else
agent.socket in --config (default /etc/ferry/ferry.toml), else /run/ferry/ferry.sock.
submit, jobs and cancel may instead attach through the agent's reattach file, as the launcher does:
--reattach FILE (or $FERRY_REATTACH).

A key's passphrase is never taken from the command line: use --passphrase-file (one trailing
newline is removed), FERRY_PASSPHRASE, or --ask-passphrase at a terminal.
Run 'ferry COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], newCLI()))
}

// usageError is a mistake in the command line: reported with exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run runs the command line args (without the program name) and returns the exit status: 0 on
// success, 1 when the command failed, 2 for a wrong command line.
func run(args []string, c *cli) int {
	if len(args) == 0 {
		fmt.Fprint(c.errOut, usage)
		return 2
	}
	name, rest := args[0], args[1:]
	if name == "scheduler" {
		return inspect.Main(rest, c.in, c.out, c.errOut)
	}
	var err error
	switch name {
	case "agent":
		err = cmdAgent(rest)
	case "plugin":
		err = cmdPlugin(rest)
	case "submit":
		err = c.submit(rest)
	case "jobs":
		err = c.jobs(rest)
	case "cancel":
		err = c.cancel(rest)
	case "identity":
		err = c.identity(rest)
	case "member":
		err = c.member(rest)
	case "creds":
		err = c.creds(rest)
	case "keys":
		err = c.keys(rest)
	case "audit":
		err = c.audit(rest)
	case "pools":
		err = c.pools(rest)
	case "version":
		fmt.Fprintln(c.out, version())
	case "-h", "--help", "help":
		fmt.Fprint(c.out, usage)
	default:
		fmt.Fprintf(c.errOut, "ferry: unknown command %q\n\n%s", name, usage)
		return 2
	}
	var ue usageError
	var help helpText
	switch {
	case errors.As(err, &help):
		fmt.Fprint(c.out, string(help))
		return 0
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.msg != "" { // empty: the flag package has reported it
			fmt.Fprintf(c.errOut, "ferry %s: %v\n", name, err)
		}
		return 2
	default:
		fmt.Fprintf(c.errOut, "ferry %s: %v\n", name, err)
		return 1
	}
}

// cli is the CLI's view of the world, so tests can run commands in-process.
type cli struct {
	in     io.Reader // standard input: key files given as "-", answers when there is no terminal
	out    io.Writer // tables and JSON
	errOut io.Writer // prompts, warnings, errors
	getenv func(string) string
	// openTTY opens the controlling terminal for prompts; an error means there is none.
	openTTY func() (*os.File, error)
}

func newCLI() *cli {
	return &cli{
		in:      os.Stdin,
		out:     os.Stdout,
		errOut:  os.Stderr,
		getenv:  os.Getenv,
		openTTY: func() (*os.File, error) { return os.OpenFile("/dev/tty", os.O_RDWR, 0) },
	}
}
