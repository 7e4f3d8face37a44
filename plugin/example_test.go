package plugin_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/ferryhpc/ferry/plugin"
)

// The agent's `ferry plugin` subcommand: serve to the launcher that started us.
func ExampleServe() {
	var agent plugin.Service // the real implementation, built from the configuration
	plugin.Serve(agent, plugin.NewLogger(hclog.Info))
}

// The agent's `ferry agent` subcommand: a long-running agent that launchers attach to.
func ExampleServeDaemon() {
	var agent plugin.Service // the real implementation
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := plugin.ServeDaemon(ctx, agent, plugin.NewLogger(hclog.Info), "/run/ferry/agent.json"); err != nil {
		log.Fatal(err)
	}
}

// A launcher that starts its own agent.
func ExampleStart() {
	c, err := plugin.Start(exec.Command("ferry", "plugin", "--config", "/etc/ferry/config.toml"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // stops the agent

	job, err := c.Service().Submit(context.Background(), plugin.SubmitRequest{
		Identity: "lab-a", User: "alice", Token: "run-1/task-1/1", Dir: "ab/cdef", Script: []byte("echo hello\n"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.ID, job.Status)
}

// A launcher that uses a running `ferry agent`.
func ExampleAttach() {
	c, err := plugin.Attach("/run/ferry/agent.json", nil)
	if err != nil {
		log.Fatal(err) // errors.Is(err, plugin.ErrUnavailable) when no agent runs
	}
	defer c.Close() // the agent keeps running

	info, err := c.Info(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ferry agent", info.Version)
}

// The agent's local CLI socket: every local user may connect, and each call acts for the member
// the caller's Unix uid maps to.
func ExampleServeSocket() {
	var agent plugin.Service // the real implementation (it also implements plugin.Admin)
	resolve := func(uid uint32) (plugin.Actor, error) {
		if uid == 0 {
			return plugin.Actor{Member: "root"}, nil // root is an owner, for bootstrap
		}
		return plugin.Actor{}, fmt.Errorf("unix uid %d is not a member: ask an owner to run `ferry member add`", uid)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := plugin.ServeSocket(ctx, agent, "/run/ferry/ferry.sock", resolve, plugin.NewLogger(hclog.Info)); err != nil {
		log.Fatal(err)
	}
}

// The CLI: reach the agent on its socket and manage credentials as the member this Unix user is.
func ExampleDialSocket() {
	c, err := plugin.DialSocket("/run/ferry/ferry.sock")
	if err != nil {
		log.Fatal(err) // errors.Is(err, plugin.ErrUnavailable) when no agent serves it
	}
	defer c.Close()
	creds, err := c.Admin().ListCredentials(context.Background(), "")
	if err != nil {
		log.Fatal(err) // errors.Is(err, plugin.ErrPermissionDenied) for a user who is not a member
	}
	for _, cr := range creds {
		fmt.Println(cr.Identity, cr.Member, cr.Fingerprint, cr.Status)
	}
}

// A launcher that acts for an organisation member: the agent checks what that member may do.
func ExampleWithActor() {
	c, err := plugin.Attach("/run/ferry/agent.json", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := plugin.WithActor(context.Background(), plugin.Actor{Member: "alice@example.org"})
	jobs, err := c.Service().ListJobs(ctx, plugin.ListRequest{ActiveOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(jobs), "active jobs")
}
