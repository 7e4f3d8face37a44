package sge

import (
	"testing"

	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
	"github.com/ferryhpc/ferry/scheduler/internal/adaptertest"
)

func FuzzParseQstatXML(f *testing.F) {
	adaptertest.Seed(f, "sge-qstat-xml-1", "sge-qstat-xml-3", "sge-qstat-xml-5", "sge-qstat-xml-7")
	f.Add([]byte(arrayXML))
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatXML(b)
		adaptertest.CheckStates(t, js, err)
	})
}

func FuzzParseQstatTable(f *testing.F) {
	adaptertest.Seed(f, "sge-qstat-1", "sge-qstat-3", "sge-qstat-5", "sge-qstat-7")
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQstatTable(b)
		adaptertest.CheckStates(t, js, err)
	})
}

func FuzzParseQacct(f *testing.F) {
	f.Add([]byte(qacctOut))
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := ParseQacct(b)
		adaptertest.CheckStates(t, js, err)
	})
}

func FuzzParseSubmit(f *testing.F) {
	adaptertest.Seed(f, "sge-qsub-")
	s := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := s.ParseSubmit(b)
		if err == nil && !adapter.IsDigits(string(id)) {
			t.Fatalf("ParseSubmit returned id %q", id)
		}
	})
}
