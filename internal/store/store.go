// Package store persists what the agent must not lose: every job (so that a restarted agent
// re-attaches to each one it submitted), members, identities, sealed credentials, and the web
// front door's accounts, sessions, tokens and invitations. Store is the contract; Bolt (an
// embedded bbolt file, the default for one agent) and Postgres (for several agents on one
// database) implement it, and the same tests run on both (store_test.go).
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketJobs   = []byte("jobs")
	bucketTokens = []byte("tokens")
)

// ErrNotFound means no record has that key.
var ErrNotFound = errors.New("not found")

// Job is the persisted record of one task. Times are UTC.
type Job struct {
	ID          string    `json:"id"`
	Identity    string    `json:"identity"`
	User        string    `json:"user"`
	Token       string    `json:"token,omitempty"`
	Name        string    `json:"name"`
	Dir         string    `json:"dir"`
	SchedulerID string    `json:"scheduler_id,omitempty"`
	Status      string    `json:"status"`
	State       string    `json:"state,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Queue       string    `json:"queue,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Submitted   time.Time `json:"submitted,omitempty"`
	Started     time.Time `json:"started,omitempty"`
	Ended       time.Time `json:"ended,omitempty"`
	LeftQueue   time.Time `json:"left_queue,omitempty"` // first poll that no longer listed the job
	ExitCode    *int      `json:"exit_code,omitempty"`
	AcctExit    *int      `json:"acct_exit,omitempty"`  // exit code per scheduler accounting (fallback)
	FinalSeen   time.Time `json:"final_seen,omitempty"` // when a final state was first seen
	Error       string    `json:"error,omitempty"`
	Done        bool      `json:"done"` // final status and exit code recorded; no more tracking
	// CancelRequested records that Ferry cancelled the job: some schedulers (Grid Engine) report a
	// cancelled job as failed.
	CancelRequested bool              `json:"cancel_requested,omitempty"`
	Meta            map[string]string `json:"meta,omitempty"`
	// Spec is what was submitted, kept so an agent restarted mid-submit can finish the submit.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// Bolt is the store in an embedded bbolt file. It is safe for concurrent use by one process
// (bbolt locks the file: a second agent on the same state_dir is refused at Open).
type Bolt struct {
	db *bolt.DB
}

// Open opens (creating 0600) the store at path.
func Open(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w (is another agent running with the same state_dir?)", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketJobs, bucketTokens} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Bolt{db: db}, nil
}

// Close closes the database.
func (s *Bolt) Close() error { return s.db.Close() }

func tokenKey(identity, user, token string) []byte {
	return []byte(identity + "\x00" + user + "\x00" + token)
}

// Put writes j (insert or replace) and indexes its token.
func (s *Bolt) Put(j Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketJobs).Put([]byte(j.ID), b); err != nil {
			return err
		}
		if j.Token != "" {
			return tx.Bucket(bucketTokens).Put(tokenKey(j.Identity, j.User, j.Token), []byte(j.ID))
		}
		return nil
	})
}

// Delete removes the job with id and its token index entry.
func (s *Bolt) Delete(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs).Get([]byte(id))
		if b == nil {
			return nil
		}
		var j Job
		if err := json.Unmarshal(b, &j); err == nil && j.Token != "" {
			if err := tx.Bucket(bucketTokens).Delete(tokenKey(j.Identity, j.User, j.Token)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketJobs).Delete([]byte(id))
	})
}

// Get returns the job with id.
func (s *Bolt) Get(id string) (Job, error) {
	var j Job
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs).Get([]byte(id))
		if b == nil {
			return fmt.Errorf("job %q: %w", id, ErrNotFound)
		}
		return json.Unmarshal(b, &j)
	})
	return j, err
}

// ByToken returns the job submitted by identity/user with token.
func (s *Bolt) ByToken(identity, user, token string) (Job, error) {
	var id string
	_ = s.db.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketTokens).Get(tokenKey(identity, user, token)))
		return nil
	})
	if id == "" {
		return Job{}, fmt.Errorf("token %q: %w", token, ErrNotFound)
	}
	return s.Get(id)
}

// All returns every job, calling keep to filter (nil keeps all).
func (s *Bolt) All(keep func(Job) bool) ([]Job, error) {
	var out []Job
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(_, v []byte) error {
			var j Job
			if err := json.Unmarshal(v, &j); err != nil {
				return err
			}
			if keep == nil || keep(j) {
				out = append(out, j)
			}
			return nil
		})
	})
	return out, err
}
