package scheduler

import (
	"bytes"
	"errors"
)

// ErrUnavailable means the scheduler's controller could not be reached (down, restarting, or
// refusing connections) and the command certainly had no effect: a submit created no job. It is
// worth retrying later, with the same token.
var ErrUnavailable = errors.New("scheduler controller unavailable")

// Failure says what a failed submit command means for the job.
type Failure int

const (
	// FailureRejected: the scheduler refused the job (bad partition, bad resources). Retrying the
	// same request cannot help.
	FailureRejected Failure = iota
	// FailureUnavailable: the controller could not be reached; no job was created.
	FailureUnavailable
	// FailureAmbiguous: the controller stopped answering mid-transaction (a timeout after the
	// request was sent); the job may exist and must be looked up before submitting again.
	FailureAmbiguous
)

func (f Failure) String() string {
	switch f {
	case FailureUnavailable:
		return "unavailable"
	case FailureAmbiguous:
		return "ambiguous"
	}
	return "rejected"
}

// FailureClassifier is the optional ability to tell, from a failed submit's output, a job the
// scheduler refused from a controller that could not be reached. Without it every failed submit
// is FailureRejected.
type FailureClassifier interface {
	ClassifyFailure(r Result) Failure
}

// Classify is the shared matcher behind the adapters' ClassifyFailure: a result whose stderr or
// stdout contains one of ambiguous (checked first) or unavailable, compared without regard to
// case, is that failure; anything else is FailureRejected.
func Classify(r Result, unavailable, ambiguous []string) Failure {
	out := bytes.ToLower(append(append([]byte{}, r.Stderr...), r.Stdout...))
	for _, m := range ambiguous {
		if bytes.Contains(out, []byte(m)) {
			return FailureAmbiguous
		}
	}
	for _, m := range unavailable {
		if bytes.Contains(out, []byte(m)) {
			return FailureUnavailable
		}
	}
	return FailureRejected
}
