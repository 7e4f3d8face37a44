package plugin

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorCodes is the one mapping between Go errors and gRPC status codes, used in both directions:
// the server shim turns an implementation's error into the code of the first entry it matches
// (errors.Is), and the client shim turns that code back into an error that matches the same
// entry's error. Anything unmatched travels as codes.Unknown and comes back matching none of them.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrNotFound, codes.NotFound},
	{ErrInvalidArgument, codes.InvalidArgument},
	{ErrPermissionDenied, codes.PermissionDenied},
	{ErrUnavailable, codes.Unavailable},
	{ErrAlreadyExists, codes.AlreadyExists},
	{ErrFailedPrecondition, codes.FailedPrecondition},
	{ErrUnimplemented, codes.Unimplemented},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// toStatus converts an implementation's error into a gRPC status error carrying err's message
// unchanged and the code of the first errorCodes entry err matches (codes.Unknown if none). It
// returns nil for nil.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codeOf(err), err.Error())
}

// codeOf returns the status code for err (see errorCodes).
func codeOf(err error) codes.Code {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return codes.Unknown
}

// fromStatus converts an error returned by a gRPC call into the error a launcher sees: its message
// is the agent's message unchanged, and errors.Is matches the errorCodes entry for its code (for
// example ErrNotFound, or context.Canceled). Transport failures arrive the same way: an agent that
// cannot be reached is codes.Unavailable, so ErrUnavailable. It returns nil for nil.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC (a conversion error on our side): already a plain Go error.
		return err
	}
	re := &remoteError{code: st.Code(), msg: st.Message()}
	for _, e := range errorCodes {
		if e.code == st.Code() {
			re.kind = e.err
			break
		}
	}
	return re
}

// remoteError is an error the agent (or the connection to it) returned to a launcher. Error returns
// the agent's message unchanged; errors.Is matches the sentinel for its code (ErrNotFound,
// ErrUnavailable, ..., context.Canceled, context.DeadlineExceeded), and matches nothing for
// codes.Unknown and other unmapped codes.
type remoteError struct {
	code codes.Code
	msg  string
	kind error // the sentinel for code, nil if none
}

// Error returns the agent's message, or the code's name if the agent sent none.
func (e *remoteError) Error() string {
	if e.msg == "" {
		return "ferry agent: " + e.code.String()
	}
	return e.msg
}

// Unwrap returns the sentinel error that the code maps to, or nil.
func (e *remoteError) Unwrap() error { return e.kind }

// GRPCStatus returns the status the error was made from, so status.FromError and status.Code
// still work for callers that speak gRPC.
func (e *remoteError) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }
