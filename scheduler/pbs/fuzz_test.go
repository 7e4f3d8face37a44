package pbs

import (
	"testing"

	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

func FuzzParseQstatJSON(f *testing.F) {
	adaptertest.Seed(f, "pbspro-qstat-json-")
	f.Add([]byte(history))
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatJSON(b)
		adaptertest.CheckStates(t, js, err)
	})
}

func FuzzParseQstatFull(f *testing.F) {
	adaptertest.Seed(f, "pbspro-qstat-f-", "torque-qstat-f-")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatFull(b)
		adaptertest.CheckStates(t, js, err)
	})
}

func FuzzParseQstatTable(f *testing.F) {
	adaptertest.Seed(f, "pbspro-qstat-1", "pbspro-qstat-3", "pbspro-qstat-5", "pbspro-qstat-7", "pbspro-qstat-9", "torque-qstat-1")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatTable(b)
		adaptertest.CheckStates(t, js, err)
	})
}

func FuzzParseSubmit(f *testing.F) {
	adaptertest.Seed(f, "pbs-qsub-")
	p := NewPro(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := p.ParseSubmit(b)
		if err == nil && (!adapter.ValidID(string(id)) || id[0] < '0' || id[0] > '9') {
			t.Fatalf("ParseSubmit returned id %q", id)
		}
	})
}
