package pbs

import (
	"strings"
	"time"

	"github.com/ferryhpc/ferry/scheduler/internal/adapter"
)

// pbsTimeLayouts are the layouts PBS prints times in: ctime(3) ("Thu Jun 19 21:27:51 2025") in
// qstat -f and its JSON.
var pbsTimeLayouts = []string{"Mon Jan _2 15:04:05 2006", "Mon Jan 2 15:04:05 2006"}

// parseTime parses a PBS time in time.Local (the server prints local time), or epoch seconds (some
// sites patch qstat to print them). Anything else gives the zero time: a time is information, not
// a reason to fail a poll.
func parseTime(s string) time.Time {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return time.Time{}
	}
	if adapter.IsDigits(s) && len(s) <= 11 {
		var n int64
		for i := 0; i < len(s); i++ {
			n = n*10 + int64(s[i]-'0')
		}
		if n <= 0 {
			return time.Time{}
		}
		return time.Unix(n, 0)
	}
	for _, l := range pbsTimeLayouts {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			return t
		}
	}
	return time.Time{}
}
