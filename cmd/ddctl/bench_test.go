//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/state"
	"github.com/ddctl/ddctl/internal/workload"
)

// BenchmarkPlanNoopBinary runs the real ddctl binary, built for the
// benchmark, as a user would: ddctl plan -detailed-exitcode in a directory
// of 10,000 refunds and 1,000 recurring charges (12,000 occurrences) whose
// state matches. It reports the wall time of the process (wall-ms) and
// its peak resident memory (rss-MB, the largest of the runs); the target
// is under 1 s and 200 MB, and zero calls to DOKU (b.Fatal otherwise).
//
//	go test ./cmd/ddctl -run '^$' -bench PlanNoopBinary -count 3
func BenchmarkPlanNoopBinary(b *testing.B) {
	bin := buildDDCTL(b)
	sb := sandboxtest.New(b)
	dir := b.TempDir()
	// The occurrences count back from now, as the plan counts them.
	if err := workload.Write(dir, workload.Params{Refunds: 10000, Charges: 1000, Now: time.Now()}); err != nil {
		b.Fatal(err)
	}
	sb.WriteDOKUBlock(b, filepath.Join(dir, workload.DOKUFile))
	cfg, err := workload.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.OpenWith(filepath.Join(dir, workload.StateFile), state.OpenOptions{AllowPlaintextSecrets: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := workload.WriteState(context.Background(), st, cfg, time.Now()); err != nil {
		b.Fatal(err)
	}
	st.Close()

	// The state takes seconds to write: sub-benchmark, so that it is
	// written once per -count rather than once per b.N tried.
	b.Run("refunds=10000/occurrences=12000", func(b *testing.B) {
		var wall time.Duration
		var rss int64
		for range b.N {
			before := sb.Server.Stats().Calls
			cmd := exec.Command(bin, "-chdir="+dir, "plan", "-detailed-exitcode")
			cmd.Env = cleanEnv()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			t0 := time.Now()
			err := cmd.Run()
			wall += time.Since(t0)
			if err != nil {
				b.Fatalf("ddctl plan -detailed-exitcode: %v (want exit 0: nothing to do)\n%s%s", err, stdout.Bytes(), stderr.Bytes())
			}
			if !strings.Contains(stdout.String(), "No changes.") {
				b.Fatalf("ddctl plan printed:\n%s", stdout.Bytes())
			}
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				rss = max(rss, ru.Maxrss) // KiB on Linux
			}
			for op, n := range sb.Server.Stats().Calls {
				if n != before[op] {
					b.Fatalf("ddctl plan called %s (%d -> %d); a converged plan makes no call", op, before[op], n)
				}
			}
		}
		b.ReportMetric(float64(wall.Microseconds())/1000/float64(b.N), "wall-ms")
		b.ReportMetric(float64(rss)/1024, "rss-MB")
		b.ReportMetric(0, "calls")
	})
}

// buildDDCTL builds this command into a temporary directory, as go install
// would, and returns the binary's path.
func buildDDCTL(b *testing.B) string {
	b.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.Skipf("no go command to build ddctl with: %v", err)
	}
	bin := filepath.Join(b.TempDir(), "ddctl")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cleanEnv is the environment without ddctl's own variables, so that the
// benchmark's state is read as written (no state key, no log).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DDCTL_") {
			env = append(env, kv)
		}
	}
	return env
}
