package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresDSN returns the DSN of the test cluster's PostgreSQL (cluster.json's "postgres", or
// $FERRY_TEST_POSTGRES), or skips the test with the reason and the command that fixes it.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("FERRY_TEST_POSTGRES")
	if dsn == "" {
		b, err := os.ReadFile(Path())
		if err != nil {
			t.Skipf("test cluster absent (%v): run `make cluster-up` as root (make test does it) for the PostgreSQL tests", err)
		}
		var c struct {
			Postgres string `json:"postgres"`
		}
		if err := json.Unmarshal(b, &c); err != nil || c.Postgres == "" {
			t.Skipf("%s names no PostgreSQL: run `make cluster-up` (make test does it) for the PostgreSQL tests", Path())
		}
		dsn = c.Postgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("the test cluster's PostgreSQL is not answering (%v): run `make cluster-up`", err)
	}
	conn.Close(ctx)
	return dsn
}

// PostgresDB creates a fresh, empty database for the test on the test cluster's PostgreSQL and
// returns its DSN; the database is dropped when the test ends. It skips like PostgresDSN.
func PostgresDB(t testing.TB) string {
	t.Helper()
	admin := PostgresDSN(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ferrytest_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("test PostgreSQL DSN: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// PostgresHostPort is the test PostgreSQL's host:port (for a proxy in front of it).
func PostgresHostPort(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(PostgresDSN(t))
	if err != nil {
		t.Fatalf("test PostgreSQL DSN: %v", err)
	}
	return u.Host
}
