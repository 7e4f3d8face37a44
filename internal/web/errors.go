package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ferryhpc/ferry/internal/identity"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// apiError is the one error shape of the API: {"error":{"code":...,"message":...}}.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// httpError is an error with the status and code it answers with.
type httpError struct {
	status int
	code   string
	msg    string
	retry  time.Duration // Retry-After, for 429
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{status: http.StatusBadRequest, code: "bad_request", msg: fmt.Sprintf(format, a...)}
}

// statusOf maps an error to its HTTP status and code: the contract's conditions to their usual
// statuses. Anything unknown is a 500 whose message is not shown (it may name internals).
func statusOf(err error) (int, string, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.code, he.msg
	case errors.Is(err, identity.ErrUnauthenticated), errors.Is(err, identity.ErrSignIn):
		return http.StatusUnauthorized, "unauthenticated", err.Error()
	case errors.Is(err, contract.ErrPermissionDenied):
		return http.StatusForbidden, "forbidden", err.Error()
	case errors.Is(err, contract.ErrNotFound):
		return http.StatusNotFound, "not_found", err.Error()
	case errors.Is(err, contract.ErrAlreadyExists):
		return http.StatusConflict, "already_exists", err.Error()
	case errors.Is(err, contract.ErrFailedPrecondition):
		return http.StatusConflict, "conflict", err.Error()
	case errors.Is(err, contract.ErrInvalidArgument):
		return http.StatusUnprocessableEntity, "invalid", err.Error()
	case errors.Is(err, contract.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable", err.Error()
	case errors.Is(err, contract.ErrUnimplemented):
		return http.StatusNotImplemented, "unimplemented", err.Error()
	}
	return http.StatusInternalServerError, "internal", "internal error; the agent's log has the details"
}

// writeError answers with err in the API's error shape.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := statusOf(err)
	if status == http.StatusInternalServerError {
		s.log.Error().Err(err).Str("path", r.URL.Path).Str("method", r.Method).Msg("request failed")
	}
	var he *httpError
	if errors.As(err, &he) && he.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(he.retry.Seconds()+0.999)))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
	}
	writeJSON(w, status, apiError{Error: apiErrorBody{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
