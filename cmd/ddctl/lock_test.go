package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
)

// lockRounds is how many times two applies start together.
const lockRounds = 200

// busyRe matches SQLite's "busy" errors as they would read if one reached
// the user: SQLITE_BUSY, SQLITE_LOCKED, "database is locked" and "database
// table is locked".
var busyRe = regexp.MustCompile(`(?i)SQLITE_BUSY|SQLITE_LOCKED|database (table )?is locked`)

// lockHolderRe is the lock error's naming of its holder (state.LockedError).
var lockHolderRe = regexp.MustCompile(`is locked by .*\(pid (\d+) on [^,]+, (plan|apply), since [^,]+, lock ID [0-9a-f]+\)`)

// TestConcurrentApplies starts two `ddctl apply -auto-approve` on one state
// at the same moment, 200 times. Each
// round adds one refund block (a payment made elsewhere) to the
// configuration, so exactly one refund request must reach DOKU per round:
// one apply makes it and the other, having waited for the state lock,
// finds nothing to do. Every fourth round both run with -lock-timeout=0s:
// the one that does not get the lock must fail with the lock error naming
// the holder (its pid among the round's processes), or, if it came after
// the holder had finished, find nothing to do. Beside the applies, a third
// process runs each round: ddctl plan (which takes the lock too), or
// ddctl history or state list (readers, which do not). No SQLite busy
// error may reach any process's output.
//
// Figures: rounds; rounds where both applies acted (must be 0); refund
// requests per round (must be 1); busy errors surfaced (must be 0); lock
// waits observed (the loser ended after the winner and found nothing to
// do: it planned only once the winner's refund was committed, under the
// lock); lock errors naming the holder.
func TestConcurrentApplies(t *testing.T) {
	start := time.Now()
	sb := sandboxtest.New(t)
	dir := t.TempDir()
	writeDOKUBlock(t, sb, dir, "requests_per_second = 1000")
	env := []string{"DDCTL_STATE_KEY=" + hexKey()}
	var cfg strings.Builder
	cfg.WriteString("settings {\n  reference_prefix = \"LOCKZ\"\n}\n")
	// The state exists before the first round, as it would in CI.
	writeHCL(t, dir, "main.hcl", cfg.String())
	// The refunds are of the payer's payments (Pay): the payer, bound
	// outside ddctl, is adopted first.
	adoptPayer(t, sb, dir, env)
	if out, errOut, code := runDDCTLEnv(t, dir, env, "apply", "-auto-approve"); code != 0 {
		t.Fatalf("first apply exited %d:\n%s%s", code, out, errOut)
	}

	var bothActed, noneActed, busy, waits, lockErrors, nameless, unlocked, afterHolder, extraRequests, zeroRounds int
	var firstNameless string
	var loserWait []time.Duration
	third := []string{"plan", "history", "state list"}
	for round := range lockRounds {
		ref := fmt.Sprintf("LOCK-%03d", round)
		sb.Pay(t, ref, money.Amount(10000+round))
		fmt.Fprintf(&cfg, "refund \"r%03d\" {\n  payment = %q\n  binding = binding.payer\n}\n", round, ref)
		writeHCL(t, dir, "main.hcl", cfg.String())

		zero := round%4 == 3
		timeout := "-lock-timeout=60s"
		if zero {
			timeout, zeroRounds = "-lock-timeout=0s", zeroRounds+1
		}
		procs := []*roundProc{
			newRoundProc(env, "-chdir="+dir, "apply", "-auto-approve", timeout),
			newRoundProc(env, "-chdir="+dir, "apply", "-auto-approve", timeout),
		}
		if !zero {
			procs = append(procs, newRoundProc(env, append([]string{"-chdir=" + dir}, strings.Fields(third[round%len(third)])...)...))
		}
		before := sb.Calls(doku.OpRefund)
		for _, p := range procs {
			if err := p.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			p.started = time.Now()
		}
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(func() {
				p.cmd.Wait()
				p.ended = time.Now()
			})
		}
		wg.Wait()
		requests := sb.Calls(doku.OpRefund) - before
		if requests != 1 {
			extraRequests++
			t.Errorf("round %d: %d refund requests reached the sandbox for 1 new refund block", round, requests)
		}
		for _, p := range procs {
			if busyRe.MatchString(p.out.String()) {
				busy++
				t.Errorf("round %d: %s surfaced a busy error:\n%s", round, p.name(), p.out.String())
			}
		}
		a, b := procs[0], procs[1]
		switch {
		case a.acted() && b.acted():
			bothActed++
			t.Errorf("round %d: both applies acted:\n%s\n---\n%s", round, a.out.String(), b.out.String())
			continue
		case !a.acted() && !b.acted():
			noneActed++
			t.Errorf("round %d: neither apply acted:\n%s\n---\n%s", round, a.out.String(), b.out.String())
			continue
		}
		winner, loser := a, b
		if b.acted() {
			winner, loser = b, a
		}
		if winner.cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("round %d: the apply that acted exited %d:\n%s", round, winner.cmd.ProcessState.ExitCode(), winner.out.String())
		}
		switch {
		case loser.nothingToDo() && loser.cmd.ProcessState.ExitCode() == 0:
			if loser.ended.After(winner.ended) {
				waits++
				loserWait = append(loserWait, loser.ended.Sub(loser.started))
			} else {
				afterHolder++
			}
		case zero && loser.cmd.ProcessState.ExitCode() == 1 && strings.Contains(loser.out.String(), "is locked by"):
			m := lockHolderRe.FindStringSubmatch(loser.out.String())
			if m == nil {
				if nameless++; nameless == 1 {
					firstNameless = fmt.Sprintf("round %d:\n%s", round, loser.out.String())
				}
				break
			}
			pid, _ := strconv.Atoi(m[1])
			if pid != winner.cmd.Process.Pid {
				t.Errorf("round %d: the lock error names pid %d; the apply that acted was pid %d:\n%s", round, pid, winner.cmd.Process.Pid, loser.out.String())
				break
			}
			lockErrors++
		default:
			// Neither waited for the lock nor failed with its error: the two
			// ran at once (the state's own check of open operations may
			// still have stopped the second request).
			if unlocked++; unlocked <= 3 {
				t.Errorf("round %d: the apply that did not act exited %d, neither after waiting for the lock nor with its error:\n%s",
					round, loser.cmd.ProcessState.ExitCode(), loser.out.String())
			}
		}
		if len(procs) == 3 {
			if code := procs[2].cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("round %d: %s exited %d:\n%s", round, procs[2].name(), code, procs[2].out.String())
			}
		}
	}
	if l := sb.Ledger(t); len(l.Refunds) != lockRounds {
		t.Errorf("ledger: %d refunds, want %d", len(l.Refunds), lockRounds)
	}
	if nameless > 0 {
		// README.md, "How it works": the lock names its holder. state.AcquireLock
		// writes the holder's LockInfo only after flock succeeds (truncate,
		// then write), and Lock.Unlock empties the file before releasing
		// it: a contender refused in either window reads an empty file.
		t.Errorf("%d of %d lock errors did not name the holder (pid 0, no host, no lock ID); the first, %s", nameless, nameless+lockErrors, firstNameless)
	}
	if unlocked > 3 {
		t.Errorf("… %d rounds in all where the applies ran at once", unlocked)
	}
	var longest time.Duration
	for _, d := range loserWait {
		longest = max(longest, d)
	}
	t.Logf("concurrent applies: %d rounds in %v (%d with -lock-timeout=0s); both acted: %d; neither: %d; rounds with other than 1 refund request: %d; "+
		"busy errors surfaced: %d; lock waits observed: %d (the waiting apply's longest run %v); losers that came after the holder had finished: %d; "+
		"lock errors naming the holder: %d, not naming it: %d; rounds where the applies ran at once: %d",
		lockRounds, time.Since(start).Round(time.Millisecond), zeroRounds, bothActed, noneActed, extraRequests, busy, waits, longest.Round(time.Millisecond), afterHolder, lockErrors, nameless, unlocked)
}

// roundProc is one process of a round, its output in one buffer.
type roundProc struct {
	cmd            *exec.Cmd
	out            bytes.Buffer
	started, ended time.Time
}

func newRoundProc(env []string, args ...string) *roundProc {
	p := &roundProc{cmd: ddctlExec(env, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	return p
}

func (p *roundProc) name() string { return "ddctl " + strings.Join(p.cmd.Args[2:], " ") }

func (p *roundProc) acted() bool {
	return strings.Contains(p.out.String(), "Apply complete! Calls: 1 succeeded")
}

func (p *roundProc) nothingToDo() bool {
	return strings.Contains(p.out.String(), "Apply complete! Nothing to do.")
}
