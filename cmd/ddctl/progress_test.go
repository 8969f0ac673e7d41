package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ddctl/ddctl/internal/reconcile"
)

func TestProgressBar(t *testing.T) {
	p := &progress{total: 50, counts: map[reconcile.ResultStatus]int{}}
	for i := range 12 {
		p.done++
		if i == 3 {
			p.counts[reconcile.ResultFailed]++
		} else {
			p.counts[reconcile.ResultSucceeded]++
		}
	}
	if got, want := p.barLine(10), "[##........] 12/50 24% (11 succeeded, 1 failed)"; got != want {
		t.Fatalf("barLine = %q, want %q", got, want)
	}
	p.done = 50
	if got := p.barLine(10); !strings.HasPrefix(got, "[##########] 50/50 100%") {
		t.Fatalf("barLine at the end = %q", got)
	}
}

// Off a terminal (a log, CI), a large batch prints its lines only: no bar,
// no control characters.
func TestProgressOffTerminal(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, 100, true)
	for range 100 {
		p.report(reconcile.ActionResult{Action: reconcile.Action{Kind: reconcile.ActionRefund, Address: "refund.a"}, Status: reconcile.ResultSucceeded})
	}
	p.finish()
	if strings.ContainsAny(b.String(), "\r\x1b[") || strings.Count(b.String(), "\n") != 100 {
		t.Fatalf("output off a terminal has a bar or lacks lines:\n%q", b.String())
	}
}
