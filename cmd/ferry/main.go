// Command ferry is Ferry's single binary: the agent daemon, the go-plugin server a launcher starts,
// and the CLI that talks to a running agent.
package main

import (
	"fmt"
	"os"
)

const usage = `ferry runs workflow tasks on HPC clusters as each user, over per-user SSH pools.

Usage:
  ferry agent  --config FILE                 run the long-running agent launchers attach to
  ferry plugin --config FILE                 serve a launcher that started ferry (go-plugin)
  ferry submit [flags] SCRIPT                submit SCRIPT as a user; prints the job id
  ferry jobs   [--identity I] [--user U] [--active] [--json] [--watch]
  ferry cancel ID...                         cancel jobs
  ferry version

The CLI commands reach the running agent through its reattach file: --reattach FILE, else
$FERRY_REATTACH, else <state_dir>/agent.json from --config (default /etc/ferry/ferry.toml).
Run 'ferry COMMAND -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "agent":
		err = cmdAgent(args)
	case "plugin":
		err = cmdPlugin(args)
	case "submit":
		err = cmdSubmit(args)
	case "jobs":
		err = cmdJobs(args)
	case "cancel":
		err = cmdCancel(args)
	case "version":
		fmt.Println(version())
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "ferry: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferry %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
