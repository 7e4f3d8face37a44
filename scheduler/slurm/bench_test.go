package slurm

import (
	"fmt"
	"strings"
	"testing"
)

// squeueLines returns n lines of StatusCommand output with a realistic mix of states and times.
func squeueLines(n int) []byte {
	states := []string{"PD", "R", "R", "R", "CG", "CD", "F", "CA", "TO", "S"}
	var b strings.Builder
	for i := 0; i < n; i++ {
		st := states[i%len(states)]
		start, end := "1795906987", "1795907011"
		if st == "PD" {
			start, end = "N/A", "N/A"
		}
		if st == "R" {
			end = "NONE"
		}
		fmt.Fprintf(&b, "%d|%s|None|debug|alice|1795906941|%s|%s|nf-align_sample_%d_(%d)\n", 1000000+i, st, start, end, i, i%7)
	}
	return []byte(b.String())
}

// BenchmarkParseStatus10k parses one squeue answer of 10,000 jobs (target: under 20 ms).
func BenchmarkParseStatus10k(b *testing.B) {
	out := squeueLines(10000)
	s := New(Options{})
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		states, err := s.ParseStatus(out)
		if err != nil || len(states) != 10000 {
			b.Fatalf("%d states, %v", len(states), err)
		}
	}
}

// BenchmarkParseAccounting10k parses one sacct answer of 10,000 jobs.
func BenchmarkParseAccounting10k(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "%d|COMPLETED|0:0|None|debug|alice|1795906941|1795906987|1795907011|nf-align_sample_%d\n", 1000000+i, i)
	}
	out := []byte(sb.String())
	s := New(Options{})
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		states, err := s.ParseAccounting(out)
		if err != nil || len(states) != 10000 {
			b.Fatalf("%d states, %v", len(states), err)
		}
	}
}
