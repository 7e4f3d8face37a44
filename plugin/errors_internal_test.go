package plugin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"bare sentinel", ErrNotFound, codes.NotFound},
		{"wrapped twice", fmt.Errorf("cancel %q: %w", "j", fmt.Errorf("scancel: %w", ErrPermissionDenied)), codes.PermissionDenied},
		{"joined: first entry in the table wins", errors.Join(ErrUnavailable, ErrNotFound), codes.NotFound},
		{"context", fmt.Errorf("dial: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"unmapped", errors.New("boom"), codes.Unknown},
		{"unmapped wrapper of nothing", fmt.Errorf("x: %v", ErrNotFound), codes.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, codeOf(tt.err))
			assert.Equal(t, tt.want, status.Code(toStatus(tt.err)))
		})
	}
}

func TestStatusRoundTripInProcess(t *testing.T) {
	assert.NoError(t, toStatus(nil))
	assert.NoError(t, fromStatus(nil))

	// Every table entry maps to its code and back to itself.
	for _, e := range errorCodes {
		err := fromStatus(toStatus(fmt.Errorf("op: %w", e.err)))
		assert.ErrorIs(t, err, e.err)
		assert.Equal(t, "op: "+e.err.Error(), err.Error())
		assert.Equal(t, e.code, status.Code(err), "GRPCStatus must keep the code")
	}

	// A code outside the table matches no sentinel but keeps code and message.
	err := fromStatus(status.Error(codes.ResourceExhausted, "too many"))
	assert.Equal(t, "too many", err.Error())
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	for _, e := range errorCodes {
		assert.NotErrorIs(t, err, e.err)
	}

	// An empty message still says something.
	assert.Equal(t, "ferry agent: NotFound", fromStatus(status.Error(codes.NotFound, "")).Error())

	// A non-gRPC error passes through unchanged.
	plain := errors.New("plain")
	assert.Same(t, plain, fromStatus(plain))
}
