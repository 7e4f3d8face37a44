package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ferryhpc/ferry/plugin/contract"
)

// sseKeepalive is how often an idle event stream sends a comment, so proxies and browsers keep it.
const sseKeepalive = 15 * time.Second

// apiEvents streams job changes the caller may see as Server-Sent Events ("event: job", data the
// job as JSON), starting with the current state of each active job. Filters: identity, user.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("web: the response cannot stream")
	}
	q := r.URL.Query()
	req := contract.WatchRequest{Identity: q.Get("identity"), User: q.Get("user")}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events := make(chan contract.JobEvent, 64)
	errc := make(chan error, 1)
	go func() {
		errc <- s.be.Watch(ctx, req, func(e contract.JobEvent) error {
			select {
			case events <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	// A refusal comes back at once: answer it as an error rather than as an empty stream.
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	case <-time.After(50 * time.Millisecond):
	case e := <-events:
		events <- e // not consumed: put it back for the loop (the channel has room: we just took it)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": ferry job events\n\n")
	fl.Flush()
	tick := time.NewTicker(sseKeepalive)
	defer tick.Stop()
	for {
		select {
		case e := <-events:
			b, err := json.Marshal(toJobJSON(e.Job))
			if err != nil {
				return nil
			}
			if _, err := fmt.Fprintf(w, "event: job\nid: %s\ndata: %s\n\n", e.Job.ID, b); err != nil {
				return nil
			}
			fl.Flush()
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			fl.Flush()
		case <-errc:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
