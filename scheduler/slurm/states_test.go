package slurm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/scheduler"
)

// documentedCodes is every code and long name of the squeue(1) "JOB STATE CODES" table, as
// copied in the shared fixtures' STATES.md.
var documentedCodes = map[string]string{
	"BF": "BOOT_FAIL", "CA": "CANCELLED", "CD": "COMPLETED", "CF": "CONFIGURING", "CG": "COMPLETING",
	"DL": "DEADLINE", "F": "FAILED", "NF": "NODE_FAIL", "OOM": "OUT_OF_MEMORY", "PD": "PENDING",
	"PR": "PREEMPTED", "R": "RUNNING", "RD": "RESV_DEL_HOLD", "RF": "REQUEUE_FED", "RH": "REQUEUE_HOLD",
	"RQ": "REQUEUED", "RS": "RESIZING", "RV": "REVOKED", "SI": "SIGNALING", "SE": "SPECIAL_EXIT",
	"SO": "STAGE_OUT", "ST": "STOPPED", "S": "SUSPENDED", "TO": "TIMEOUT",
}

func TestStatesTable(t *testing.T) {
	require.Len(t, States, len(documentedCodes))
	for _, s := range States {
		t.Run(s.Code, func(t *testing.T) {
			require.Equal(t, documentedCodes[s.Code], s.Name)
			require.NotEmpty(t, s.Meaning)
			require.NotEqual(t, scheduler.StatusUnknown, s.Status)
			require.Equal(t, s.Status, StateStatus(s.Code))
			require.Equal(t, s.Status, StateStatus(s.Name))
			require.Equal(t, s.Status, StateStatus(strings.ToLower(s.Name)), "case does not matter")
		})
	}
}

func TestStateStatus(t *testing.T) {
	tests := []struct {
		raw     string
		want    scheduler.Status
		wantRaw string
	}{
		{"PD", scheduler.StatusPending, "PD"},
		{"CF", scheduler.StatusRunning, "CF"},
		{"CG", scheduler.StatusRunning, "CG"},
		{"SO", scheduler.StatusRunning, "SO"},
		{"SI", scheduler.StatusRunning, "SI"},
		{"RS", scheduler.StatusRunning, "RS"},
		{"RQ", scheduler.StatusPending, "RQ"},
		{"RF", scheduler.StatusPending, "RF"},
		{"S", scheduler.StatusHeld, "S"},
		{"ST", scheduler.StatusHeld, "ST"},
		{"RH", scheduler.StatusHeld, "RH"},
		{"RD", scheduler.StatusHeld, "RD"},
		{"SE", scheduler.StatusHeld, "SE"},
		{"CD", scheduler.StatusCompleted, "CD"},
		{"F", scheduler.StatusFailed, "F"},
		{"NF", scheduler.StatusFailed, "NF"},
		{"BF", scheduler.StatusFailed, "BF"},
		{"OOM", scheduler.StatusFailed, "OOM"},
		{"CA", scheduler.StatusCancelled, "CA"},
		{"PR", scheduler.StatusCancelled, "PR"},
		{"RV", scheduler.StatusCancelled, "RV"},
		{"TO", scheduler.StatusTimeout, "TO"},
		{"DL", scheduler.StatusTimeout, "DL"},
		{"CANCELLED by 1000", scheduler.StatusCancelled, "CANCELLED"},
		{"  RUNNING  ", scheduler.StatusRunning, "RUNNING"},
		{"CANCELLED+", scheduler.StatusCancelled, "CANCELLED"},
		{"OUT_OF_ME+", scheduler.StatusFailed, "OUT_OF_MEMORY"},
		{"REQUEUE_H+", scheduler.StatusHeld, "REQUEUE_HOLD"},
		{"REQUEUE_F+", scheduler.StatusPending, "REQUEUE_FED"},
		{"RESV_DEL_+", scheduler.StatusHeld, "RESV_DEL_HOLD"},
		{"CONFIGURI+", scheduler.StatusRunning, "CONFIGURING"},
		{"REQUEUE+", scheduler.StatusUnknown, "REQUEUE"}, // REQUEUED, REQUEUE_FED, REQUEUE_HOLD
		{"?", scheduler.StatusUnknown, "?"},
		{"LAUNCH_FAILED", scheduler.StatusUnknown, "LAUNCH_FAILED"},
		{"", scheduler.StatusUnknown, ""},
		{"+", scheduler.StatusUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			require.Equal(t, tt.want, StateStatus(tt.raw))
			raw, st := normalizeState(tt.raw)
			require.Equal(t, tt.wantRaw, raw)
			require.Equal(t, tt.want, st)
		})
	}
}

// TestActiveStatesStayActive guards the choice that requeue and completing states never look final.
func TestActiveStatesStayActive(t *testing.T) {
	for _, code := range []string{"PD", "CF", "R", "CG", "SO", "SI", "RS", "RQ", "RF", "S", "ST", "RH", "RD", "SE"} {
		require.True(t, StateStatus(code).Active(), code)
	}
	for _, code := range []string{"CD", "F", "NF", "BF", "OOM", "CA", "PR", "RV", "TO", "DL"} {
		require.True(t, StateStatus(code).Final(), code)
	}
}
