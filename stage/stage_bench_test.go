package stage_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryhpc/ferry/internal/netproxy"
	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/sshpool"
	"github.com/ferryhpc/ferry/stage"
)

// benchTree writes n files of kib KiB each (random bytes: SSH compresses nothing here) into a new
// temporary directory, flat like scripts/bench's tree, and returns it.
func benchTree(b *testing.B, n, kib int) string {
	b.Helper()
	dir := b.TempDir()
	buf := make([]byte, kib<<10)
	for i := 0; i < n; i++ {
		_, _ = rand.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.dat", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// benchFiles is the tree size of BenchmarkTree: FERRY_BENCH_FILES or 2,000 (scripts/bench's
// stage_small; fewer keep the sequential baseline's +10 ms run short).
func benchFiles(b *testing.B) int {
	if v := os.Getenv("FERRY_BENCH_FILES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("FERRY_BENCH_FILES=%q is not a positive number", v)
		}
		return n
	}
	return 2000
}

// benchWorkDir is FERRY_BENCH_WORKDIR or the test cluster's work dir.
func benchWorkDir(c *testcluster.Cluster) string {
	if d := os.Getenv("FERRY_BENCH_WORKDIR"); d != "" {
		return d
	}
	return c.WorkDir
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time this process used per operation, which other load on the machine
// moves less than the wall time (the login node's sshd and sftp-server are not counted).
func reportCPU(b *testing.B, cpu time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}

// BenchmarkTree uploads (Stager.Upload) and downloads (Stager.Download) a tree of 4 KiB files as
// alice on a warm pool, directly and through a latency proxy adding 10 ms round-trip time, for a
// few values of Options.Concurrency (0 is the default). The comparison with OpenSSH `sftp -b put
// -r` is cmd/ferry-bench/internal/bench's BenchmarkStage and scripts/bench (stage_small); here, run e.g.
//
//	go test -run '^$' -bench 'Tree/loopback' -benchtime 3x ./stage/
//
// Copies are removed only at the end: on the test machine's ext4, which has no journal, creating a
// file scans past every inode deleted in the last seconds to minutes, so deleting 2,000 files
// between two iterations makes the next one's file creation (serial in sftp-server) several times
// slower. Other runs' deletions on the same disk still show in the numbers; FERRY_BENCH_WORKDIR
// (a directory alice can write, e.g. on tmpfs) replaces the cluster's work dir to take the disk
// out of them.
func BenchmarkTree(b *testing.B) {
	c := testcluster.Require(b)
	m := sshpool.NewManager(sshpool.Options{}, zerolog.Nop())
	defer m.Close()
	proxy, err := netproxy.Start(fmt.Sprintf("%s:%d", c.Host, c.Port), 5*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()
	n := benchFiles(b)
	tree := benchTree(b, n, 4)
	ctx := context.Background()
	base := fmt.Sprintf("stage-bench/%d", time.Now().UnixNano())
	workDir := benchWorkDir(c)
	defer os.RemoveAll(filepath.Join(workDir, "stage-bench"))

	for _, ep := range []struct {
		name string
		port int
	}{{"loopback", c.Port}, {"rtt10", proxy.Addr().Port}} {
		p := poolAt(b, c, m, "alice", "127.0.0.1", ep.port)
		for _, conc := range []int{0, 1, 16} {
			s, err := stage.New(workDir, stage.Options{Concurrency: conc})
			if err != nil {
				b.Fatal(err)
			}
			dir := fmt.Sprintf("%s/%s-c%d", base, ep.name, conc)
			if _, err := s.MkdirAll(ctx, p, dir); err != nil { // warms the pool
				b.Fatal(err)
			}
			name := fmt.Sprintf("%s/c%d", ep.name, conc)
			b.Run(name+"/upload", func(b *testing.B) {
				b.SetBytes(int64(n) << 12)
				i := 0
				var cpu time.Duration
				defer func() { reportCPU(b, cpu) }()
				for b.Loop() {
					i++
					rel := fmt.Sprintf("%s/up-%d", dir, i)
					before := cpuTime()
					res, err := s.Upload(ctx, p, tree, rel)
					cpu += cpuTime() - before
					if err != nil || res.Files != n {
						b.Fatalf("%d of %d files: %v", res.Files, n, err)
					}
				}
			})
			b.Run(name+"/download", func(b *testing.B) {
				b.StopTimer()
				rel := dir + "/down"
				if _, err := s.Upload(ctx, p, tree, rel); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(n) << 12)
				b.StartTimer()
				var cpu time.Duration
				defer func() { reportCPU(b, cpu) }()
				for b.Loop() {
					out := b.TempDir()
					before := cpuTime()
					res, err := s.Download(ctx, p, rel, out)
					cpu += cpuTime() - before
					if err != nil || res.Files != n {
						b.Fatalf("%d of %d files: %v", res.Files, n, err)
					}
				}
			})
		}
	}
}

// BenchmarkBig uploads and downloads one 256 MiB file as alice on a warm pool on loopback: the
// single-file path, which the tree path's concurrency must not slow down.
func BenchmarkBig(b *testing.B) {
	c := testcluster.Require(b)
	m := sshpool.NewManager(sshpool.Options{}, zerolog.Nop())
	defer m.Close()
	ctx := context.Background()
	p := pool(b, c, m, "alice")
	s, err := stage.New(c.WorkDir, stage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const size = 256 << 20
	local := filepath.Join(b.TempDir(), "big.bin")
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	f, err := os.Create(local)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < size>>20; i++ {
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	dir := fmt.Sprintf("stage-bench/big-%d", time.Now().UnixNano())
	defer os.RemoveAll(filepath.Join(c.WorkDir, "stage-bench"))
	if _, err := s.MkdirAll(ctx, p, dir); err != nil {
		b.Fatal(err)
	}
	rel := dir + "/big.bin"
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if res, err := s.Upload(ctx, p, local, rel); err != nil || res.Bytes != size {
				b.Fatalf("%d bytes: %v", res.Bytes, err)
			}
		}
	})
	b.Run("download", func(b *testing.B) {
		b.SetBytes(size)
		out := filepath.Join(b.TempDir(), "big.bin")
		for b.Loop() {
			if res, err := s.Download(ctx, p, rel, out); err != nil || res.Bytes != size {
				b.Fatalf("%d bytes: %v", res.Bytes, err)
			}
		}
	})
}
