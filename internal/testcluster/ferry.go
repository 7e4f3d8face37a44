package testcluster

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
)

// BuildFerry compiles cmd/ferry into dir and returns the binary's path. It fails with go build's
// output when the build does; building again is safe.
func BuildFerry(dir string) (string, error) {
	bin := filepath.Join(dir, "ferry")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ferryhpc/ferry/cmd/ferry").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, out)
	}
	return bin, nil
}

// SyncBuffer is a bytes.Buffer that one goroutine may write (a logger, exec's copying of a
// child's output) while the test reads it. The zero value is an empty buffer ready to use.
type SyncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends p to the buffer; it never fails.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
