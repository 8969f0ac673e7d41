package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// floodRSSBound is the daemon's peak resident memory the floods below must
// stay under. Before the listener was hardened, 300 connections sending
// 1 MB headers took it from 19 to 448 MB, and 2,000 stalled 64 KiB bodies
// to 320 MB.
const floodRSSBound = 96 << 20

// TestDaemonListenerFloods floods DOKU's listener of the real daemon, as
// anyone who reaches it can, without a token: 300 connections each sending
// a 1 MB header block, then 2,000 connections each announcing a 64 KiB
// notification body and stalling after 1 KiB of it. Headers are cut at
// 16 KiB (431), a request without a token is answered 401 before its body
// is read, and at most 256 connections are held at once: the daemon's peak
// RSS stays under floodRSSBound, and it still serves.
func TestDaemonListenerFloods(t *testing.T) {
	sb := startSandbox(t)
	dir := writeConfig(t, sb, "")
	d := startDaemon(t, dir, "-listen=127.0.0.1:0")
	d.waitCycle(t, 0, nil)
	addr := strings.TrimPrefix(d.url, "http://")
	pid := d.cmd.Process.Pid
	base := peakRSS(t, pid)

	headers := flood(t, addr, 300, func(c net.Conn) string {
		// Written while the answer is read: the server answers once it
		// has read 16 KiB, and the rest of the write then fails.
		go func() {
			fmt.Fprintf(c, "POST /notifications/doku HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
			c.Write([]byte("X-Pad: " + strings.Repeat("a", 1<<20) + "\r\n"))
		}()
		return statusOf(c)
	})
	afterHeaders := peakRSS(t, pid)

	bodies := flood(t, addr, 2000, func(c net.Conn) string {
		fmt.Fprintf(c, "POST /notifications/doku HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n")
		c.Write([]byte(strings.Repeat(" ", 1024))) // and no more
		return statusOf(c)
	})
	afterBodies := peakRSS(t, pid)

	t.Logf("peak RSS: %d MB at start, %d MB after the header flood (answers %v), %d MB after the body flood (answers %v)",
		base>>20, afterHeaders>>20, headers, afterBodies>>20, bodies)
	if afterBodies > floodRSSBound {
		t.Errorf("peak RSS %d MB, want under %d MB", afterBodies>>20, floodRSSBound>>20)
	}
	// A 431 may be lost to the reset of a connection whose sender is
	// still writing: "none" is no answer, which is fine; anything but 431
	// is not.
	if n := headers["431"] + headers["none"]; n != 300 || headers["431"] == 0 {
		t.Errorf("header floods answered %v, want 431 (or the connection closed)", headers)
	}
	if n := bodies["401"]; n != 2000 {
		t.Errorf("%d of 2,000 body floods answered 401, want all: %v", n, bodies)
	}
	if code, _ := d.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after the floods: HTTP %d", code)
	}
}

// flood opens n connections to addr at once, runs send on each, and counts
// the answers by HTTP status ("none" when the connection closed first).
func flood(t *testing.T, addr string, n int, send func(net.Conn) string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			status := "none"
			c, err := net.DialTimeout("tcp", addr, 30*time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(60 * time.Second)) // a hang fails the count, not the test run
				status = send(c)
				c.Close()
			} else {
				status = "dial: " + err.Error()
			}
			mu.Lock()
			got[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// statusOf reads an HTTP status line from c: "431", or "none".
func statusOf(c net.Conn) string {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "none"
	}
	if f := strings.Fields(line); len(f) >= 2 {
		return f[1]
	}
	return "none"
}

// peakRSS is a process's peak resident memory (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("peak RSS of the daemon: %v (read from /proc, as on Linux)", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
