package plugin

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// TestJobsToPBMatchesJobToPB: the batch conversion Status uses sets every field jobToPB sets, for
// a job with every field filled (checked by reflection, so a field added later cannot be missed)
// and for one with the optional ones empty.
func TestJobsToPBMatchesJobToPB(t *testing.T) {
	code := -3
	full := Job{ID: "i", Identity: "h", User: "u", Token: "t", Name: "n", Dir: "/d", SchedulerID: "1", Status: "failed",
		State: "F", Reason: "r", Queue: "q", Submitted: time.Unix(10, 1), Started: time.Unix(20, 2), Ended: time.Unix(30, 3),
		ExitCode: &code, Error: "e", Owner: "o", Done: true}
	v := reflect.ValueOf(full)
	for i := 0; i < v.NumField(); i++ {
		require.False(t, v.Field(i).IsZero(), "fill Job.%s in this test", v.Type().Field(i).Name)
	}
	jobs := []Job{full, {ID: "empty"}, full}
	got := jobsToPB(jobs)
	require.Len(t, got, len(jobs))
	for i, j := range jobs {
		require.True(t, proto.Equal(jobToPB(j), got[i]), "job %d: %v != %v", i, jobToPB(j), got[i])
	}
}
