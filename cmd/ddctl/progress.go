package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ddctl/ddctl/internal/reconcile"
)

// progressBarMin is the batch size from which apply draws a progress bar
// on a terminal; smaller batches get their lines only.
const progressBarMin = 20

// progress prints apply's line per action and, on a terminal and for a
// large batch, a bar below them that each line pushes down. Logs and CI
// (not a terminal) get the lines only, with no control characters.
type progress struct {
	w      io.Writer
	total  int
	done   int
	counts map[reconcile.ResultStatus]int
	bar    bool
}

// newProgress draws the bar only when bar is allowed (not -no-color or
// NO_COLOR), the batch is large and w is a terminal.
func newProgress(w io.Writer, total int, bar bool) *progress {
	return &progress{w: w, total: total, counts: map[reconcile.ResultStatus]int{}, bar: bar && total >= progressBarMin && isTerminal(w)}
}

// report prints one action's result; calls must not overlap.
func (p *progress) report(r reconcile.ActionResult) {
	p.done++
	p.counts[r.Status]++
	if p.bar {
		fmt.Fprint(p.w, "\r\x1b[K") // erase the bar; the line takes its place
	}
	fmt.Fprintln(p.w, reconcile.RenderResultLine(r))
	if p.bar {
		fmt.Fprint(p.w, p.barLine(40))
	}
}

// finish erases the bar, leaving the lines.
func (p *progress) finish() {
	if p.bar {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// barLine is the bar for width cells: "[#####.....] 120/500 24% (118
// succeeded, 2 failed)".
func (p *progress) barLine(width int) string {
	filled := 0
	if p.total > 0 {
		filled = width * p.done / p.total
	}
	var tally []string
	for _, st := range []reconcile.ResultStatus{reconcile.ResultSucceeded, reconcile.ResultFailed, reconcile.ResultDeferred, reconcile.ResultUnknown, reconcile.ResultSkipped} {
		if n := p.counts[st]; n > 0 {
			tally = append(tally, fmt.Sprintf("%d %s", n, st))
		}
	}
	return fmt.Sprintf("[%s%s] %d/%d %d%% (%s)", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		p.done, p.total, 100*p.done/max(p.total, 1), strings.Join(tally, ", "))
}
