package bench

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Result is one benchmark's outcome: the measures, and the checks of its targets. Line renders it
// as the `BENCH name key=value ...` line scripts/bench prints.
type Result struct {
	// Name is the BENCH line's name, e.g. "exec_loopback".
	Name string
	// Bench is the benchmark it belongs to: exec, submit, poll, stage, scale or rpc.
	Bench string
	// Measures are what was measured, in print order.
	Measures []Measure
	// Checks compare a ratio or value with its target.
	Checks []Check
	// Notes say what a reader must know to read the numbers (sizes reduced, settings changed).
	Notes []string
	// Findings are product problems the measurement exposed, met target or not.
	Findings []string
	// Err is set when the benchmark could not be measured; Measures may be partial.
	Err error
}

// Measure is one measured value.
type Measure struct {
	Key   string // e.g. "ferry_ms"
	Value string // formatted, no spaces
	Desc  string // for the report, e.g. "Ferry warm pool, median of 100"
}

// Check is one target.
type Check struct {
	// Key names the value on the BENCH line, e.g. "ratio_vs_controlmaster".
	Key string
	// Desc says what the value is, for the report.
	Desc  string
	Value float64
	// Op and Limit are the target: Value Op Limit, Op one of "<=", ">=", "<", "==".
	Op    string
	Limit float64
	// Tol is the tolerance of "==" (a measured rate is never exact).
	Tol float64
	// Unit follows numbers in the report: "x", "ms", "MiB", "".
	Unit string
	// Why and Plan explain a miss: what limits the result in the product and what to do. Shown
	// in the report only when the target is missed.
	Why, Plan string
}

// Met reports whether the target holds.
func (c Check) Met() bool {
	switch c.Op {
	case "<=":
		return c.Value <= c.Limit
	case ">=":
		return c.Value >= c.Limit
	case "<":
		return c.Value < c.Limit
	case "==":
		return math.Abs(c.Value-c.Limit) <= c.Tol
	}
	return false
}

// Target renders the target, e.g. "<= 0.7x".
func (c Check) Target() string {
	t := c.Op + " " + num(c.Limit) + c.Unit
	if c.Tol > 0 {
		t += " (+-" + num(c.Tol) + ")"
	}
	return t
}

// Met reports whether every check holds (false with an error or no checks).
func (r Result) Met() bool {
	if r.Err != nil || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.Met() {
			return false
		}
	}
	return true
}

// Add appends a measure.
func (r *Result) Add(key, value, desc string) {
	r.Measures = append(r.Measures, Measure{key, value, desc})
}

// AddMs appends a duration measure in milliseconds.
func (r *Result) AddMs(key string, d time.Duration, desc string) {
	r.Add(key, num(float64(d)/float64(time.Millisecond)), desc)
}

// Line renders the BENCH line: measures, then each check's value and target (target_KEY=<=0.7,
// >=30, or 3+-0.1 for an equality with a tolerance), then met=yes|no, or error="..." instead.
func (r Result) Line() string {
	var b strings.Builder
	b.WriteString("BENCH ")
	b.WriteString(r.Name)
	for _, m := range r.Measures {
		fmt.Fprintf(&b, " %s=%s", m.Key, m.Value)
	}
	for _, c := range r.Checks {
		target := c.Op + num(c.Limit)
		if c.Op == "==" {
			target = num(c.Limit)
			if c.Tol > 0 {
				target += "+-" + num(c.Tol)
			}
		}
		fmt.Fprintf(&b, " %s=%s target_%s=%s", c.Key, num(c.Value), c.Key, target)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, " error=%q", r.Err.Error())
		return b.String()
	}
	if r.Met() {
		b.WriteString(" met=yes")
	} else {
		b.WriteString(" met=no")
	}
	return b.String()
}

// num formats a number compactly with 3 significant digits (more for large integers).
func num(v float64) string {
	switch {
	case math.IsInf(v, 0) || math.IsNaN(v):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v == math.Trunc(v) && math.Abs(v) < 1e12:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// Durations is a sample of durations.
type Durations []time.Duration

// Percentile returns the p-th percentile (0-100, nearest rank). Zero for an empty sample.
func (d Durations) Percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append(Durations(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Median returns the median (the lower middle for an even count).
func (d Durations) Median() time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append(Durations(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2]
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.Inf(1)
	}
	return float64(a) / float64(b)
}

// round rounds a ratio to 3 significant digits so that the check and the printed value agree.
func round(v float64) float64 {
	f, _ := strconv.ParseFloat(num(v), 64)
	return f
}
