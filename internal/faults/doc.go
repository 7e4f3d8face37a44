// Package faults is Ferry's fault suite: integration tests that break things for real (the login
// node's sshd, the Slurm controller, the agent process, the network, the file system, the submit
// reply) and check that no task is lost, none runs twice, none is reported failed while it is
// fine, and every caller gets an error rather than a hang. It also holds the load test and the
// seeded quoting property test through real login shells.
//
// Every test counts jobs by token both in the agent and in Slurm (squeue comment "ferry:TOKEN"
// and sacct job name), so a duplicate or a lost job fails it whatever the agent believes.
//
// Tests that stop shared daemons (slurmctld) or flood the shared Slurm run only when
// FERRY_FAULTS_EXCLUSIVE=1 is set, and must then run alone:
//
//	FERRY_FAULTS_EXCLUSIVE=1 go test -count=1 -race ./internal/faults/
//
// The others are safe beside every other package's tests: the sshd they kill is a private one
// started on its own port, the black hole is a proxy of their own, the full disk is a tmpfs of
// their own. docs/reliability.md lists each fault, the guarantee and the test that proves it.
package faults
