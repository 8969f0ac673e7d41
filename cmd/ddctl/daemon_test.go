package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/daemon"
	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

// The tests of this file run `ddctl sandbox`, `ddctl daemon` and `ddctl
// apply` as real processes (this test binary run as ddctl, as the crash
// test does) and observe them the way an operator would: their output
// lines, the daemon's HTTP endpoints, the sandbox's ledger and stats, and
// the state file read while the daemon runs. What the daemon does is
// waited for through its log lines (DDCTL_LOG=debug makes every cycle log
// one), or, for what no process signals, by polling the state or the
// ledger for a condition; a deadline only turns a signal that never comes
// into a failure. Sleeps only pick the random moment of a kill.

// waitLimit is how long a test waits for a signal before it fails: far
// above what any step needs, so that it never decides an outcome.
const waitLimit = 60 * time.Second

// wib is Jakarta time, the configurations' time zone.
var wib = time.FixedZone("WIB", 7*3600)

// lineLog is one output stream of a process: a scanner goroutine appends
// each line as it comes and wakes whoever waits for one.
type lineLog struct {
	name  string
	mu    sync.Mutex
	lines []string
	grew  chan struct{} // closed and replaced when a line comes or the stream ends
	ended bool
}

func newLineLog(name string) *lineLog { return &lineLog{name: name, grew: make(chan struct{})} }

// consume reads r to its end, a line at a time.
func (l *lineLog) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, sc.Text())
		close(l.grew)
		l.grew = make(chan struct{})
		l.mu.Unlock()
	}
	io.Copy(io.Discard, r) // after a line too long: never block the process
	l.mu.Lock()
	l.ended = true
	close(l.grew)
	l.mu.Unlock()
}

func (l *lineLog) snapshot() (lines []string, grew chan struct{}, ended bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines, l.grew, l.ended
}

// all is the stream so far, as one string.
func (l *lineLog) all() string {
	lines, _, _ := l.snapshot()
	return strings.Join(lines, "\n")
}

// wait returns the index and text of the first line at or after from that
// match accepts. It fails tb if the stream ends first (the process
// exited) or after waitLimit.
func (l *lineLog) wait(tb testing.TB, from int, what string, match func(string) bool) (int, string) {
	tb.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		lines, grew, ended := l.snapshot()
		for i := from; i < len(lines); i++ {
			if match(lines[i]) {
				return i, lines[i]
			}
		}
		from = max(from, len(lines))
		if ended {
			tb.Fatalf("%s ended without %s", l.name, what)
		}
		select {
		case <-grew:
		case <-deadline.C:
			tb.Fatalf("%s: no %s within %v", l.name, what, waitLimit)
		}
	}
}

// logLine is one JSON log line of the daemon.
type logLine map[string]any

func (m logLine) str(k string) string { s, _ := m[k].(string); return s }

// waitLog waits for the daemon's first JSON log line at or after from
// whose msg is msg and that match (nil: any) accepts.
func (p *ddctlProc) waitLog(tb testing.TB, from int, msg string, match func(logLine) bool) (int, logLine) {
	tb.Helper()
	var got logLine
	i, _ := p.stderr.wait(tb, from, fmt.Sprintf("log line %q", msg), func(s string) bool {
		var m logLine
		if json.Unmarshal([]byte(s), &m) != nil || m.str("msg") != msg || (match != nil && !match(m)) {
			return false
		}
		got = m
		return true
	})
	return i, got
}

// waitCycle waits for the line that ends a cycle ("cycle", or "cycle
// ended early" with its error) at or after from, that match (nil: any)
// accepts.
func (p *ddctlProc) waitCycle(tb testing.TB, from int, match func(logLine) bool) (int, logLine) {
	tb.Helper()
	var got logLine
	i, _ := p.stderr.wait(tb, from, "the end of a cycle", func(s string) bool {
		var m logLine
		if json.Unmarshal([]byte(s), &m) != nil || (m.str("msg") != "cycle" && m.str("msg") != "cycle ended early") || (match != nil && !match(m)) {
			return false
		}
		got = m
		return true
	})
	return i, got
}

// ddctlProc is a ddctl process started by a test. It is killed when the
// test ends; if the test failed, the end of its output is logged.
type ddctlProc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *lineLog
	done           chan struct{} // closed once it exited and its output was read
}

// ddctlExec is this test binary run as ddctl (TestMain).
func ddctlExec(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "DDCTL_TEST_AS_DDCTL=1"), env...)
	return cmd
}

// startDDCTL starts ddctl with args; env adds variables (NAME=VALUE).
func startDDCTL(tb testing.TB, name string, env []string, args ...string) *ddctlProc {
	tb.Helper()
	cmd := ddctlExec(env, args...)
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &ddctlProc{name: name, cmd: cmd, stdout: newLineLog(name + " stdout"), stderr: newLineLog(name + " stderr"), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { p.stdout.consume(outPipe) })
	wg.Go(func() { p.stderr.consume(errPipe) })
	go func() {
		wg.Wait() // Wait only once the pipes are read to their end
		cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.kill()
		// Under go test -race the processes are built with the race
		// detector too.
		if strings.Contains(p.stderr.all(), "WARNING: DATA RACE") {
			tb.Errorf("%s reported a data race", name)
		}
		if tb.Failed() {
			p.dump(tb)
		}
	})
	return p
}

func (p *ddctlProc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL (if it still runs) and waits until it is gone.
func (p *ddctlProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *ddctlProc) signal(tb testing.TB, sig os.Signal) {
	tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signal %s: %v", p.name, err)
	}
}

func (p *ddctlProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode waits for the process to exit and returns its code (-1 when a
// signal ended it).
func (p *ddctlProc) exitCode(tb testing.TB) int {
	tb.Helper()
	select {
	case <-p.done:
	case <-time.After(waitLimit):
		tb.Fatalf("%s did not exit within %v", p.name, waitLimit)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *ddctlProc) dump(tb testing.TB) {
	for _, l := range []*lineLog{p.stdout, p.stderr} {
		lines, _, _ := l.snapshot()
		lines = lines[max(0, len(lines)-60):]
		tb.Logf("--- last lines of %s:\n%s", l.name, strings.Join(lines, "\n"))
	}
}

// runDDCTL runs ddctl -chdir=dir args to its end.
func runDDCTL(tb testing.TB, dir string, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	return runDDCTLEnv(tb, dir, nil, args...)
}

// payerHCL declares the customer whose payments the sandbox's pay (or
// sandboxtest's Pay) makes: an account bound outside ddctl, which
// adoptPayer imports. A refund of those payments names it with
// binding = binding.payer, for its customer token.
const payerHCL = `binding "payer" {
  customer_id = "` + sandboxtest.PayerCustomerID + `"
  phone       = "` + sandboxtest.PayerPhone + `"
  success_url = "https://shop.example/bound"
  failed_url  = "https://shop.example/failed"
}
`

// payerSandbox is a sandbox that can bind the payer outside ddctl:
// sandboxtest.Env in this process, or a `ddctl sandbox` process.
type payerSandbox interface {
	PayerAuthCode(tb testing.TB) string
}

// adoptPayer adopts the payer as an operator would: it writes payerHCL
// to dir/payer.hcl and runs ddctl import binding.payer payer-1 in dir,
// with env and the authCode (bound outside ddctl at sb) on stdin; the
// import must succeed. It returns the authCode, a customer secret, and
// what the import printed (stdout, then stderr), for tests that scan
// ddctl's output for secrets. Run
// it before the first plan or apply that refunds the payer's payments;
// the import makes one customer-token exchange (and gets a B2B token if
// the state has none).
func adoptPayer(tb testing.TB, sb payerSandbox, dir string, env []string) (authCode, output string) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, "payer.hcl"), []byte(payerHCL), 0o600); err != nil {
		tb.Fatal(err)
	}
	authCode = sb.PayerAuthCode(tb)
	cmd := ddctlExec(env, "-chdir="+dir, "import", "binding.payer", sandboxtest.PayerCustomerID)
	cmd.Stdin = strings.NewReader(authCode + "\n")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		tb.Fatalf("ddctl import binding.payer: %v\nstdout:\n%s\nstderr:\n%s", err, o.String(), e.String())
	}
	return authCode, o.String() + e.String()
}

// mustApply runs ddctl apply -auto-approve in dir; it must exit 0.
func mustApply(tb testing.TB, dir string) string {
	tb.Helper()
	out, errOut, code := runDDCTL(tb, dir, "apply", "-auto-approve")
	if code != 0 {
		tb.Fatalf("ddctl apply exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	return out
}

// freeAddr is a local address no one listens on, for a process that
// another must know before it starts (the sandbox notifies the daemon).
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testClock is a clock that started at a chosen instant: the daemon's
// -start-at and the sandbox's clock follow it, so that a daemon restarted
// later carries on the same time line.
type testClock struct {
	at, base time.Time
}

func newTestClock(at time.Time) testClock { return testClock{at: at, base: time.Now()} }

func (c testClock) now() time.Time { return c.at.Add(time.Since(c.base)).In(wib) }

// startAt is the -start-at flag for a daemon started now.
func (c testClock) startAt() string { return "-start-at=" + c.now().Format(time.RFC3339Nano) }

// sandboxProc is a `ddctl sandbox` process.
type sandboxProc struct {
	*ddctlProc
	dir   string
	url   string
	creds sandbox.Credentials
}

// startSandbox starts ddctl sandbox on a free port with a new directory,
// plus args, and waits until it serves.
func startSandbox(tb testing.TB, args ...string) *sandboxProc {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "sandbox")
	p := startDDCTL(tb, "sandbox", nil, append([]string{"sandbox", "-dir=" + dir, "-listen=127.0.0.1:0"}, args...)...)
	re := regexp.MustCompile(`^DOKU sandbox listening on (http://\S+)$`)
	_, line := p.stdout.wait(tb, 0, "the sandbox's listening line", re.MatchString)
	sb := &sandboxProc{ddctlProc: p, dir: dir, url: re.FindStringSubmatch(line)[1]}
	b, err := os.ReadFile(filepath.Join(dir, sandbox.CredentialsFile))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, &sb.creds); err != nil {
		tb.Fatal(err)
	}
	return sb
}

// call makes a request to the sandbox's control API, which must answer
// 200, and decodes the answer into out (if not nil).
func (s *sandboxProc) call(tb testing.TB, method, path string, body, out any) {
	tb.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (s *sandboxProc) customer(tb testing.TB, phone, balance string) {
	tb.Helper()
	s.call(tb, "POST", "/sandbox/customers", map[string]string{"phone": phone, "balance": balance}, nil)
}

// pay creates a payment its customer has paid, for a refund to refund.
func (s *sandboxProc) pay(tb testing.TB, ref string, amount int64) {
	tb.Helper()
	s.call(tb, "POST", "/sandbox/payments", map[string]any{"partnerReferenceNo": ref, "amount": strconv.FormatInt(amount, 10), "phone": sandboxtest.PayerPhone}, nil)
}

// PayerAuthCode binds the account pay's payments come from outside ddctl
// (POST /sandbox/bindings), as sandboxtest.Env.PayerAuthCode does in this
// process, and returns its authCode.
func (s *sandboxProc) PayerAuthCode(tb testing.TB) string {
	tb.Helper()
	var b sandbox.OutsideBinding
	s.call(tb, "POST", "/sandbox/bindings", sandbox.OutsideBinding{Phone: sandboxtest.PayerPhone, CustIDMerchant: sandboxtest.PayerCustomerID}, &b)
	return b.AuthCode
}

func (s *sandboxProc) setClock(tb testing.TB, t time.Time) {
	tb.Helper()
	s.call(tb, "POST", "/sandbox/clock", map[string]string{"set": t.Format(time.RFC3339Nano)}, nil)
}

// approve confirms, as the customer would, what confirmation id waits for.
func (s *sandboxProc) approve(tb testing.TB, id string) {
	tb.Helper()
	s.call(tb, "POST", "/sandbox/confirmations/"+id, map[string]string{"action": "approve"}, nil)
}

func (s *sandboxProc) ledger(tb testing.TB) sandbox.Ledger {
	tb.Helper()
	var l sandbox.Ledger
	s.call(tb, "GET", "/sandbox/ledger", nil, &l)
	return l
}

func (s *sandboxProc) calls(tb testing.TB) map[string]int64 {
	tb.Helper()
	var st sandbox.Stats
	s.call(tb, "GET", "/sandbox/stats", nil, &st)
	return st.Calls
}

// writeConfig writes a configuration directory for sb: a doku block (its
// key files named absolutely, from credentials.json) and main.hcl. Its
// settle_time is 0s, as sandboxtest's doku block's: a daemon restarted
// after a kill settles what was cut short at once, not a minute later.
func writeConfig(tb testing.TB, sb *sandboxProc, main string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "config")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	c := sb.creds
	block := fmt.Sprintf(`doku {
  environment          = "sandbox"
  base_url             = %q
  client_id            = %q
  client_secret        = %q
  private_key_file     = %q
  doku_public_key_file = %q
  requests_per_second  = 1000
  settle_time          = "0s"
}
`, c.BaseURL, c.ClientID, c.ClientSecret, c.MerchantPrivateKeyFile, c.DOKUPublicKeyFile)
	for name, body := range map[string]string{"doku.hcl": block, "main.hcl": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// bind applies the configuration in dir, whose bindings are then
// confirmed (by the sandbox's -auto-approve, or here when autoApproved is
// false), and applies it again: the bindings are active.
func bind(tb testing.TB, sb *sandboxProc, dir string, autoApproved bool) {
	tb.Helper()
	out := mustApply(tb, dir)
	links := confirmLink.FindAllStringSubmatch(out, -1)
	if len(links) == 0 {
		tb.Fatalf("the first apply requested no binding:\n%s", out)
	}
	if !autoApproved {
		for _, m := range links {
			sb.approve(tb, m[1])
		}
	}
	waitFor(tb, "the bindings to be active at the sandbox", func() bool {
		for _, b := range sb.ledger(tb).Bindings {
			if b.Status != sandbox.BindingActive {
				return false
			}
		}
		return true
	})
	if out := mustApply(tb, dir); strings.Contains(out, "Awaiting the customer") {
		tb.Fatalf("a binding still awaits its customer after it was confirmed:\n%s", out)
	}
}

// waitFor polls cond until it holds: for conditions no process signals,
// such as the content of the state or the ledger.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("no %s within %v", what, waitLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// daemonProc is a `ddctl daemon` process that serves.
type daemonProc struct {
	*ddctlProc
	url   string // DOKU's listener
	admin string // the operator's: /readyz, /metrics
}

var (
	listeningRe = regexp.MustCompile(`^ddctl daemon: state .*; listening on (http://\S+) `)
	adminRe     = regexp.MustCompile(`; admin \(/readyz, /metrics\) on (http://\S+)$`)
)

// startDaemon starts ddctl daemon in dir (debug logs: a line per cycle)
// and waits until it holds the lease and serves.
func startDaemon(tb testing.TB, dir string, args ...string) *daemonProc {
	tb.Helper()
	p := startDaemonProc(tb, dir, args...)
	_, line := p.stdout.wait(tb, 0, "the daemon's listening line", listeningRe.MatchString)
	d := &daemonProc{ddctlProc: p, url: listeningRe.FindStringSubmatch(line)[1]}
	if m := adminRe.FindStringSubmatch(line); m != nil {
		d.admin = m[1]
	}
	return d
}

// startDaemonProc starts ddctl daemon in dir without waiting for it.
func startDaemonProc(tb testing.TB, dir string, args ...string) *ddctlProc {
	tb.Helper()
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-admin-listen") }) {
		args = append(args, "-admin-listen=127.0.0.1:0") // tests run side by side
	}
	return startDDCTL(tb, "daemon", []string{"DDCTL_LOG=debug"}, append([]string{"-chdir=" + dir, "daemon"}, args...)...)
}

// get fetches path from the daemon: /readyz and /metrics from its admin
// listener, anything else from DOKU's.
func (d *daemonProc) get(tb testing.TB, path string) (int, string) {
	tb.Helper()
	base := d.url
	if path == "/readyz" || path == "/metrics" {
		base = d.admin
	}
	resp, err := http.Get(base + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric is the value of one series of GET /metrics, such as
// ddctl_notifications_total{result="refused"}; 0 when absent.
func (d *daemonProc) metric(tb testing.TB, series string) float64 {
	tb.Helper()
	code, body := d.get(tb, "/metrics")
	if code != http.StatusOK {
		tb.Fatalf("GET /metrics: HTTP %d", code)
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("metric %s: %q", series, v)
			}
			return f
		}
	}
	return 0
}

// stateView is what a test compares of the state: its charges, refunds,
// operations and events.
type stateView struct {
	Serial     int64
	Charges    []state.Charge
	Refunds    map[string]state.Refund
	Operations []state.Operation
	Events     []state.Event
}

func readState(tb testing.TB, dir string) stateView {
	tb.Helper()
	st, err := state.Open(filepath.Join(dir, "ddctl.db"))
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var v stateView
	if v.Serial, err = st.Serial(ctx); err != nil {
		tb.Fatal(err)
	}
	if v.Charges, err = st.Charges(ctx); err != nil {
		tb.Fatal(err)
	}
	if v.Refunds, err = st.Refunds(ctx); err != nil {
		tb.Fatal(err)
	}
	if v.Operations, err = st.Operations(ctx, ""); err != nil {
		tb.Fatal(err)
	}
	if v.Events, err = st.Events(ctx, 0, 0); err != nil {
		tb.Fatal(err)
	}
	return v
}

func (v stateView) openOperations() int {
	n := 0
	for _, op := range v.Operations {
		if op.Status.Open() {
			n++
		}
	}
	return n
}

func (v stateView) events(typ state.EventType) int {
	n := 0
	for _, e := range v.Events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// notificationRows counts the state's notification inbox, processed or
// not: the state has no method for that, so it is read with SQL, read
// only.
func notificationRows(tb testing.TB, dir string) int {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+state.EscapePath(filepath.Join(dir, "ddctl.db"))+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM notifications`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// nineAM is the gym charge's first occurrence: 09:00 WIB on the first
// day of a month, at least a day after the tests start. It is derived from
// now, not pinned: the daemons and sandboxes of these tests run on a
// clock pinned near it (testClock), but bind and the applies beside them
// run at the real time, which must come before it on whatever day the
// suite runs.
var nineAM = firstOfMonthNineAM(time.Now().Add(24 * time.Hour))

// firstOfMonthNineAM is 09:00 WIB on the first day of the first month
// that starts after t.
func firstOfMonthNineAM(t time.Time) time.Time {
	t = t.In(wib)
	return time.Date(t.Year(), t.Month()+1, 1, 9, 0, 0, 0, wib)
}

// gymCharge is a customer charged 150,000 on the 1st of each month at
// 09:00 from nineAM on; gymConfig gives the first month back.
var gymCharge = `binding "alice" {
  customer_id = "cust-001"
  phone       = "6281234567890"
  success_url = "https://shop.example/pay/ok"
  failed_url  = "https://shop.example/pay/failed"
}

recurring_charge "gym" {
  binding     = binding.alice
  amount      = 150000
  schedule    = "0 9 1 * *"
  start       = "` + nineAM.Format(time.DateOnly) + `"
  description = "Gym membership"
}
`

var gymConfig = gymCharge + `
refund "gym_back" {
  payment = "` + gymOccurrence + `"
  reason  = "first month free"
}
`

var gymOccurrence = "recurring_charge.gym#" + nineAM.Format("2006-01-02T15:04Z07:00")

const gymRefund = "refund.gym_back"

// TestDaemonMonthlyCharge runs a sandbox (customers approve after 300 ms,
// notifications to the daemon) and a daemon whose clock starts a few
// seconds before the first occurrence of a monthly charge. The daemon's
// first cycle charges nothing and sets its next wake at 09:00; at 09:00 a
// "due" cycle charges; the customer approves; DOKU's notification makes a
// "notification" cycle record the success and make the occurrence's
// refund, once. No status inquiry is made: the notification settled it.
// An apply from CI while the daemon runs succeeds.
func TestDaemonMonthlyCharge(t *testing.T) {
	addr := freeAddr(t)
	sb := startSandbox(t, "-notify-url=http://"+addr+daemon.NotificationPath, "-auto-approve=300ms")
	sb.customer(t, "6281234567890", "1000000")
	dir := writeConfig(t, sb, gymConfig)
	bind(t, sb, dir, true)

	clock := newTestClock(nineAM.Add(-4 * time.Second))
	sb.setClock(t, clock.now())
	d := startDaemon(t, dir, "-listen="+addr, clock.startAt(), "-reconcile-every=1h")

	// The first cycle, before 09:00: nothing charged, next wake at 09:00.
	i, first := d.waitCycle(t, 0, nil)
	if first.str("trigger") != "full" || first.str("msg") != "cycle" {
		t.Fatalf("first cycle: %v, want a full one that succeeded", first)
	}
	if next, err := time.Parse(time.RFC3339, first.str("next")); err != nil || !next.Equal(nineAM) {
		t.Fatalf("after the first cycle the next wake is %q, want %s", first.str("next"), nineAM.Format(time.RFC3339))
	}
	if v := readState(t, dir); len(v.Charges) != 0 {
		t.Fatalf("before 09:00 the state holds %d charge attempts, want none: %+v", len(v.Charges), v.Charges)
	}

	// 09:00: the due cycle charges.
	i, act := d.waitLog(t, i+1, "action", func(m logLine) bool { return m.str("kind") == "charge" })
	if act.str("address") != gymOccurrence || act.str("status") != "succeeded" {
		t.Fatalf("charge action %v, want %s succeeded", act, gymOccurrence)
	}
	i, cyc := d.waitCycle(t, i+1, nil)
	if cyc.str("trigger") != "due" {
		t.Fatalf("the charge was made by a %q cycle, want due", cyc.str("trigger"))
	}
	// The customer approves; the notification settles the charge, and the
	// refund follows in the cycle it triggered.
	i, note := d.waitLog(t, i+1, "notification applied", nil)
	if note.str("charge_status") != string(state.ChargeSucceeded) {
		t.Fatalf("notification applied: %v, want the charge succeeded", note)
	}
	i, ref := d.waitLog(t, i+1, "action", func(m logLine) bool { return m.str("kind") == "refund" })
	if ref.str("address") != gymRefund || ref.str("status") != "succeeded" {
		t.Fatalf("refund action %v, want %s succeeded", ref, gymRefund)
	}
	_, cyc = d.waitCycle(t, i+1, nil)
	if cyc.str("trigger") != "notification" {
		t.Fatalf("the refund was made by a %q cycle, want notification", cyc.str("trigger"))
	}

	v := readState(t, dir)
	if len(v.Charges) != 1 {
		t.Fatalf("state holds %d charge attempts, want 1: %+v", len(v.Charges), v.Charges)
	}
	c := v.Charges[0]
	if c.Status != state.ChargeSucceeded || c.Attempt != 1 || !c.Occurrence.Equal(nineAM) {
		t.Errorf("charge %s#%s attempt %d is %s, want attempt 1 succeeded", c.Address, c.Occurrence, c.Attempt, c.Status)
	}
	if c.CreatedAt.Before(nineAM) {
		t.Errorf("the charge attempt was recorded at %s (daemon clock), before its occurrence %s", c.CreatedAt, nineAM)
	}
	r := v.Refunds[gymRefund]
	if r.Status != state.RefundSucceeded || r.Payment != c.PartnerReferenceNo {
		t.Errorf("%s: %s of %q, want succeeded of %q", gymRefund, r.Status, r.Payment, c.PartnerReferenceNo)
	}
	l := sb.ledger(t)
	var paid, refunds int
	for _, p := range l.Payments {
		// Paid, then refunded in full.
		if p.PartnerReferenceNo == c.PartnerReferenceNo && p.Status == doku.TxRefunded && p.PaidTime != "" && p.ReferenceNo == c.ReferenceNo {
			paid++
		}
	}
	for _, rf := range l.Refunds {
		if rf.PartnerReferenceNo == c.PartnerReferenceNo {
			refunds++
			if rf.RefundNo != r.RefundNo {
				t.Errorf("ledger refundNo %s, state %s", rf.RefundNo, r.RefundNo)
			}
		}
	}
	if paid != 1 || refunds != 1 || len(l.Payments) != 1 {
		t.Errorf("ledger: %d payments, %d of them the charge paid and refunded, %d refunds of it; want 1, 1, 1: %+v", len(l.Payments), paid, refunds, l.Payments)
	}
	calls := sb.calls(t)
	if calls["status"] != 0 {
		t.Errorf("the sandbox answered %d payment-status inquiries; want 0: the notification settled the charge", calls["status"])
	}
	if calls["payment"] != 1 || calls["refund"] != 1 {
		t.Errorf("the sandbox answered %d payment and %d refund requests, want 1 and 1", calls["payment"], calls["refund"])
	}

	// CI applies while the daemon runs: the state lock is shared a cycle
	// at a time.
	out := mustApply(t, dir)
	if !strings.Contains(out, "Apply complete!") {
		t.Errorf("apply while the daemon runs:\n%s", out)
	}
	if d.exited() {
		t.Fatal("the daemon exited during the apply")
	}
	// Nothing secret in the daemon's output, and DOKU's notification
	// quoted only at debug level; the client secret is not in the state.
	secrets := canaries(t, sb, dir, "the customer's phone number", "6281234567890")
	checkNoLeaks(t, d.ddctlProc, secrets, map[string]string{"the notification's originalReferenceNo": c.ReferenceNo})
	checkStateHasNo(t, dir, map[string]string{"the client secret": sb.creds.ClientSecret})

	t.Logf("charge %s recorded at %s (daemon clock); sandbox calls %v; apply during the daemon: %q",
		c.PartnerReferenceNo, c.CreatedAt.In(wib).Format(time.RFC3339Nano), calls, lastLine(out))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestDaemonLostNotification is TestDaemonMonthlyCharge with every
// notification lost (the sandbox never sends them) and a full reconcile
// every 2 s: its status inquiry learns that the customer paid, and the
// refund follows.
func TestDaemonLostNotification(t *testing.T) {
	addr := freeAddr(t)
	sb := startSandbox(t, "-notify-url=http://"+addr+daemon.NotificationPath, "-auto-approve=300ms", "-notify-drop-rate=1")
	sb.customer(t, "6281234567890", "1000000")
	dir := writeConfig(t, sb, gymConfig)
	bind(t, sb, dir, true)

	clock := newTestClock(nineAM.Add(-2 * time.Second))
	sb.setClock(t, clock.now())
	d := startDaemon(t, dir, "-listen="+addr, clock.startAt(), "-reconcile-every=2s")

	i, _ := d.waitLog(t, 0, "action", func(m logLine) bool { return m.str("kind") == "charge" && m.str("status") == "succeeded" })
	i, ref := d.waitLog(t, i+1, "action", func(m logLine) bool { return m.str("kind") == "refund" })
	if ref.str("address") != gymRefund || ref.str("status") != "succeeded" {
		t.Fatalf("refund action %v, want %s succeeded", ref, gymRefund)
	}
	if _, cyc := d.waitCycle(t, i+1, nil); cyc.str("trigger") != "full" {
		t.Errorf("the refund was made by a %q cycle, want full (no notification came)", cyc.str("trigger"))
	}
	v := readState(t, dir)
	if len(v.Charges) != 1 || v.Charges[0].Status != state.ChargeSucceeded {
		t.Fatalf("state charges %+v, want one attempt succeeded", v.Charges)
	}
	if r := v.Refunds[gymRefund]; r.Status != state.RefundSucceeded {
		t.Errorf("%s is %s, want succeeded", gymRefund, r.Status)
	}
	if n := notificationRows(t, dir); n != 0 {
		t.Errorf("the state received %d notifications; the sandbox was to lose them all", n)
	}
	calls := sb.calls(t)
	if calls["status"] < 1 {
		t.Errorf("the sandbox answered %d status inquiries, want at least 1: only an inquiry could learn the payment", calls["status"])
	}
	if calls["payment"] != 1 || calls["refund"] != 1 {
		t.Errorf("the sandbox answered %d payment and %d refund requests, want 1 and 1", calls["payment"], calls["refund"])
	}
	full := d.metric(t, `ddctl_reconcile_runs_total{result="success",trigger="full"}`)
	t.Logf("sandbox calls %v; %v full cycles", calls, full)
}

// TestDaemonNotificationAbuse plays DOKU against a daemon (the sandbox
// sends no notification of its own): a charge the customer confirmed is
// notified 5 times, with the same body and new X-EXTERNAL-IDs: each is
// answered 200, and the state records one notification, the attempt's
// success and one charge.succeeded event. Then 1,000 forged notifications
// (bit flips, foreign keys and tokens, another path's or mode's
// signature, missing and stale headers, truncated bodies) are each
// refused with 400 or 401 and change nothing in the state; /metrics
// counts them.
func TestDaemonNotificationAbuse(t *testing.T) {
	sb := startSandbox(t)
	sb.customer(t, "6281234567890", "1000000")
	dir := writeConfig(t, sb, gymCharge)
	bind(t, sb, dir, false)

	clock := newTestClock(nineAM.Add(5 * time.Second))
	sb.setClock(t, clock.now())
	d := startDaemon(t, dir, "-listen=127.0.0.1:0", clock.startAt(), "-reconcile-every=1h")
	i, _ := d.waitLog(t, 0, "action", func(m logLine) bool { return m.str("kind") == "charge" && m.str("status") == "succeeded" })
	i, _ = d.waitCycle(t, i+1, nil)

	// The customer confirms: DOKU's truth is "paid".
	v := readState(t, dir)
	if len(v.Charges) != 1 || v.Charges[0].Status != state.ChargeAwaitingCustomer {
		t.Fatalf("state charges %+v, want one awaiting its customer", v.Charges)
	}
	charge := v.Charges[0]
	m := confirmLink.FindStringSubmatch(charge.WebRedirectURL)
	if m == nil {
		t.Fatalf("charge link %q has no confirmation id", charge.WebRedirectURL)
	}
	sb.approve(t, m[1])
	var paid sandbox.Payment
	for _, p := range sb.ledger(t).Payments {
		if p.PartnerReferenceNo == charge.PartnerReferenceNo {
			paid = p
		}
	}
	if paid.Status != doku.TxSuccess {
		t.Fatalf("ledger payment %+v, want paid", paid)
	}
	body, err := doku.Marshal(doku.Notification{
		OriginalPartnerReferenceNo: paid.PartnerReferenceNo, OriginalReferenceNo: paid.ReferenceNo, OriginalExternalID: paid.ExternalID,
		LatestTransactionStatus: paid.Status, TransactionStatusDesc: "Success", Amount: doku.NewAmount(money.Amount(paid.Amount)),
		AdditionalInfo: doku.NotificationInfo{CustIDMerchant: paid.CustIDMerchant, AccountType: "DIRECT_DEBIT"},
	})
	if err != nil {
		t.Fatal(err)
	}

	dokuKey, err := doku.LoadPrivateKey(filepath.Join(sb.dir, "doku.pem"))
	if err != nil {
		t.Fatal(err)
	}
	notifyURL := d.url + daemon.NotificationPath
	genuine := sandbox.Notifier{URL: notifyURL, ClientID: sb.creds.ClientID, ClientSecret: secret.New(sb.creds.ClientSecret),
		DOKUKey: dokuKey, NowFunc: clock.now}
	ctx := context.Background()
	token, err := genuine.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for n := range 5 {
		status, err := genuine.Post(ctx, token, doku.NewExternalID(clock.now()), body)
		if err != nil || status != http.StatusOK {
			t.Fatalf("genuine notification %d: HTTP %d, %v; want 200", n+1, status, err)
		}
	}
	i, note := d.waitLog(t, i+1, "notification applied", nil)
	if note.str("charge_status") != string(state.ChargeSucceeded) {
		t.Fatalf("notification applied: %v, want the charge succeeded", note)
	}
	d.waitCycle(t, i+1, func(m logLine) bool { return m.str("trigger") == "notification" })

	before := readState(t, dir)
	notes := notificationRows(t, dir)
	if notes != 1 {
		t.Errorf("the state holds %d notifications, want 1 (4 were resends)", notes)
	}
	if len(before.Charges) != 1 || before.Charges[0].Status != state.ChargeSucceeded {
		t.Errorf("state charges %+v, want the one attempt succeeded", before.Charges)
	}
	if n := before.events(state.EventChargeSucceeded); n != 1 {
		t.Errorf("%d charge.succeeded events, want 1", n)
	}

	// 1,000 forgeries.
	forge := newForger(t, genuine, sb, token, body)
	counts := map[string]int{}
	byStatus := map[int]int{}
	began := time.Now()
	for n := range 1000 {
		kind, req := forge.next(t, n)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("forgery %d (%s): %v", n, kind, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		counts[kind]++
		byStatus[resp.StatusCode]++
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forgery %d (%s): HTTP %d, want 400 or 401", n, kind, resp.StatusCode)
		}
	}
	took := time.Since(began)
	after := readState(t, dir)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the forgeries changed the state (-before +after):\n%s", diff)
	}
	if n := notificationRows(t, dir); n != notes {
		t.Errorf("the state holds %d notifications after the forgeries, %d before", n, notes)
	}
	for series, want := range map[string]float64{
		`ddctl_notifications_total{result="refused"}`:   1000,
		`ddctl_notifications_total{result="duplicate"}`: 4,
		`ddctl_notifications_total{result="accepted"}`:  1,
	} {
		if got := d.metric(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	reasons, logged := map[string]int{}, 0
	lines, _, _ := d.stderr.snapshot()
	for _, s := range lines[i:] {
		var m logLine
		if json.Unmarshal([]byte(s), &m) == nil && m.str("msg") == "notification refused" {
			reasons[m.str("reason")]++
			logged++
		}
	}
	// Refusals are logged at a rate (a line per 10 s at most, with how
	// many were held back), not a line each: a flood does not flood the
	// log. The log is read after the flood, so its lines are all there.
	if most := 1 + int(took/(10*time.Second)); logged > most {
		t.Errorf("%d refusal lines for 1,000 forgeries in %v, want at most %d", logged, took.Round(time.Millisecond), most)
	}
	// Nothing secret in the daemon's output, genuine or forged, and the
	// notification quoted only at debug level; the client secret is not
	// in the state.
	secrets := canaries(t, sb, dir, "the customer's phone number", "6281234567890", "the token the daemon issued to DOKU", token)
	checkNoLeaks(t, d.ddctlProc, secrets, map[string]string{"the notification's originalReferenceNo": paid.ReferenceNo})
	checkStateHasNo(t, dir, map[string]string{"the client secret": sb.creds.ClientSecret})

	t.Logf("genuine: 5 sent, 1 recorded; forgeries by kind %v; answers by HTTP status %v; refusals the daemon logged, by reason: %v", counts, byStatus, reasons)
}

// forger makes forged notifications: each kind breaks one thing a
// genuine one has right.
type forger struct {
	genuine             sandbox.Notifier
	wrongKey, otherPath sandbox.Notifier
	otherMode, stale    sandbox.Notifier
	future              sandbox.Notifier
	token, foreignToken string
	expiredToken        string
	otherClientToken    string
	body                []byte
	kinds               []string
}

func newForger(tb testing.TB, genuine sandbox.Notifier, sb *sandboxProc, token string, body []byte) *forger {
	tb.Helper()
	strange, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	merchantKey, err := doku.LoadPrivateKey(sb.creds.MerchantPrivateKeyFile)
	if err != nil {
		tb.Fatal(err)
	}
	f := &forger{genuine: genuine, token: token, body: body}
	// The daemon and genuine are on their defaults: the signing key is
	// the client secret (symmetric), or DOKU's key (asymmetric).
	f.wrongKey = genuine
	f.wrongKey.DOKUKey, f.wrongKey.ClientSecret = strange, secret.New("not-the-client-secret")
	f.otherPath = genuine
	f.otherPath.URL = strings.TrimSuffix(genuine.URL, daemon.NotificationPath) + "/v1.0/debit/notify"
	f.otherMode = genuine
	f.otherMode.Mode = doku.ModeAsymmetric
	if doku.DefaultNotificationMode == doku.ModeAsymmetric {
		f.otherMode.Mode = doku.ModeSymmetric
	}
	now := genuine.NowFunc
	f.stale = genuine
	f.stale.NowFunc = func() time.Time { return now().Add(-10 * time.Minute) }
	f.future = genuine
	f.future.NowFunc = func() time.Time { return now().Add(10 * time.Minute) }
	exp := now().Add(time.Hour).Unix()
	f.foreignToken = receiverJWT(tb, strange, exp, "ddctl", genuine.ClientID)
	f.expiredToken = receiverJWT(tb, merchantKey, now().Add(-time.Minute).Unix(), "ddctl", genuine.ClientID)
	f.otherClientToken = receiverJWT(tb, merchantKey, exp, "ddctl", "BRN-SOMEONE-ELSE")
	f.kinds = []string{"bit-flipped body", "wrong key", "another path's signature", "another mode's signature", "foreign token",
		"expired token", "token of another client", "no bearer token", "missing X-SIGNATURE", "missing X-TIMESTAMP",
		"missing X-EXTERNAL-ID", "stale X-TIMESTAMP", "future X-TIMESTAMP", "truncated JSON", "other X-PARTNER-ID",
		"signed non-JSON", "signature of another body"}
	return f
}

// receiverJWT is a token in the shape the daemon issues (RS256, claims
// exp, iss, clientId), signed with key: what a forger with a stolen or
// foreign key, or an old token, would present.
func receiverJWT(tb testing.TB, key *rsa.PrivateKey, exp int64, iss, clientID string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"exp": exp, "iss": iss, "clientId": clientID})
	signing := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// next is forgery n: its kind and request.
func (f *forger) next(tb testing.TB, n int) (string, *http.Request) {
	tb.Helper()
	ctx := context.Background()
	kind := f.kinds[n%len(f.kinds)]
	extID := doku.NewExternalID(f.genuine.NowFunc())
	build := func(nt sandbox.Notifier, token string, body []byte) *http.Request {
		req, err := nt.Request(ctx, token, extID, body)
		if err != nil {
			tb.Fatal(err)
		}
		return req
	}
	setBody := func(req *http.Request, b []byte) {
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.ContentLength = int64(len(b))
	}
	var req *http.Request
	switch kind {
	case "bit-flipped body":
		req = build(f.genuine, f.token, f.body)
		b := bytes.Clone(f.body)
		b[mrand.IntN(len(b))] ^= 1 << mrand.IntN(8)
		setBody(req, b)
	case "wrong key":
		req = build(f.wrongKey, f.token, f.body)
	case "another path's signature":
		req = build(f.otherPath, f.token, f.body)
		u, err := url.Parse(f.genuine.URL)
		if err != nil {
			tb.Fatal(err)
		}
		req.URL = u
	case "another mode's signature":
		req = build(f.otherMode, f.token, f.body)
	case "foreign token":
		req = build(f.genuine, f.foreignToken, f.body)
	case "expired token":
		req = build(f.genuine, f.expiredToken, f.body)
	case "token of another client":
		req = build(f.genuine, f.otherClientToken, f.body)
	case "no bearer token":
		req = build(f.genuine, f.token, f.body)
		req.Header.Del("Authorization")
	case "missing X-SIGNATURE":
		req = build(f.genuine, f.token, f.body)
		req.Header.Del("X-SIGNATURE")
	case "missing X-TIMESTAMP":
		req = build(f.genuine, f.token, f.body)
		req.Header.Del("X-TIMESTAMP")
	case "missing X-EXTERNAL-ID":
		req = build(f.genuine, f.token, f.body)
		req.Header.Del("X-EXTERNAL-ID")
	case "stale X-TIMESTAMP":
		req = build(f.stale, f.token, f.body)
	case "future X-TIMESTAMP":
		req = build(f.future, f.token, f.body)
	case "truncated JSON":
		req = build(f.genuine, f.token, f.body[:1+mrand.IntN(len(f.body)-1)])
	case "other X-PARTNER-ID":
		req = build(f.genuine, f.token, f.body)
		req.Header.Set("X-PARTNER-ID", "BRN-SOMEONE-ELSE")
	case "signed non-JSON":
		req = build(f.genuine, f.token, []byte("originalPartnerReferenceNo=x&latestTransactionStatus=00"))
	case "signature of another body":
		// A genuine signature, lifted onto a body that says "failed".
		req = build(f.genuine, f.token, f.body)
		setBody(req, bytes.Replace(f.body, []byte(`"latestTransactionStatus":"00"`), []byte(`"latestTransactionStatus":"06"`), 1))
	}
	return kind, req
}

// TestDaemonKill9 kills the daemon (SIGKILL) 12 times while it makes 30
// refunds (due 1 s after its first start) and charges 30 occurrences (due
// 3 s after), one call at a time, against a sandbox with 20 ms of latency
// whose customers approve after 50 ms; it is restarted at once each time
// (the lease of a dead daemon of this host is taken over without
// waiting). Most kills come at a random moment; four come as a refund or
// payment request reaches the sandbox, and after one of those the
// customer pays while the daemon is down. Once it has converged, the
// ledger holds each refund and each charge exactly once and no other
// payment of ddctl's, the state agrees with it (statuses, refundNo,
// referenceNo, amounts), and no journalled operation is left open.
func TestDaemonKill9(t *testing.T) {
	const items, kills = 30, 12
	addr := freeAddr(t)
	sb := startSandbox(t, "-notify-url=http://"+addr+daemon.NotificationPath, "-auto-approve=50ms", "-latency=20ms")
	sb.customer(t, "6281234567890", "100000000")
	start := nineAM.Add(-3 * time.Second)
	var cfg strings.Builder
	cfg.WriteString(`settings {
  reference_prefix = "KILL"
}

binding "member" {
  customer_id = "cust-1"
  phone       = "6281234567890"
  success_url = "https://x.test/ok"
  failed_url  = "https://x.test/fail"
}
`)
	// The refunds are of payments of another customer (the payer, bound
	// outside ddctl and adopted below); the charges are the member's.
	for i := range items {
		ref := fmt.Sprintf("INV-%03d", i)
		sb.pay(t, ref, int64(10000+i))
		fmt.Fprintf(&cfg, "refund \"r%03d\" {\n  payment    = %q\n  binding    = binding.payer\n  not_before = %q\n}\n", i, ref, start.Add(time.Second).Format(time.RFC3339))
		fmt.Fprintf(&cfg, "recurring_charge \"c%03d\" {\n  binding  = binding.member\n  amount   = %d\n  schedule = \"0 9 1 %d *\"\n  start    = %q\n  end      = %q\n}\n",
			i, 1000+i, int(nineAM.Month()), nineAM.Format(time.DateOnly), nineAM.AddDate(0, 0, 1).Format(time.DateOnly))
	}
	dir := writeConfig(t, sb, cfg.String())
	adoptPayer(t, sb, dir, nil)
	bind(t, sb, dir, true)
	callsBefore := sb.calls(t)

	clock := newTestClock(start)
	sb.setClock(t, clock.now())
	args := func() []string {
		return []string{"-listen=" + addr, clock.startAt(), "-reconcile-every=2s", "-parallelism=1"}
	}
	// Most kills come at a random moment; some as a refund or a payment
	// request reaches the sandbox (refunds are due first, then charges).
	killPlan := [kills]string{2: "refund", 4: "payment", 5: "payment", 6: "payment"}
	const lastPaymentKill = 6
	var served, midCycle, atRequest, leftOpen int
	for k := range kills {
		p := startDaemonProc(t, dir, args()...)
		op := killPlan[k]
		hit := false
		if op != "" {
			// This kill lands while a request is at the sandbox (20 ms):
			// sent, its outcome not yet recorded.
			hit = killAtRequest(t, sb, p, op)
		} else {
			time.Sleep(time.Duration(150+mrand.IntN(1000)) * time.Millisecond) // a random moment, not a wait
		}
		if p.exited() {
			t.Fatalf("daemon %d exited by itself (code %d) before its kill", k+1, p.cmd.ProcessState.ExitCode())
		}
		p.kill()
		if hit {
			atRequest++
		}
		if hit && k == lastPaymentKill {
			// Once, the customer pays while the daemon is down: the
			// restart finds the payment made, not awaiting.
			customerPaysWhileDown(t, sb, dir)
		}
		if strings.Contains(p.stdout.all(), "listening on") {
			served++
		}
		if interruptedCycle(p) {
			midCycle++
		}
		if n := readState(t, dir).openOperations(); n > 0 {
			leftOpen++
		}
	}
	callsKilling := sb.calls(t)

	d := startDaemon(t, dir, args()...)
	var v stateView
	waitFor(t, "convergence after the kills", func() bool {
		v = readState(t, dir)
		succeeded := 0
		for _, c := range v.Charges {
			if c.Status == state.ChargeSucceeded {
				succeeded++
			}
		}
		done := 0
		for _, r := range v.Refunds {
			if r.Status == state.RefundSucceeded {
				done++
			}
		}
		return succeeded == items && done == items && v.openOperations() == 0
	})
	d.signal(t, syscall.SIGTERM)
	if code := d.exitCode(t); code != 0 {
		t.Errorf("the last daemon exited %d after SIGTERM, want 0", code)
	}

	l := sb.ledger(t)
	refundNo := map[string]string{} // partnerRefundNo → refundNo
	byPayment := map[string]int{}
	for _, r := range l.Refunds {
		refundNo[r.PartnerRefundNo] = r.RefundNo
		byPayment[r.PartnerReferenceNo]++
	}
	for i := range items {
		if n := byPayment[fmt.Sprintf("INV-%03d", i)]; n != 1 {
			t.Errorf("INV-%03d: the ledger holds %d refunds, want 1", i, n)
		}
	}
	if len(l.Refunds) != items {
		t.Errorf("the ledger holds %d refunds, want %d", len(l.Refunds), items)
	}
	ledgerPay := map[string]sandbox.Payment{}
	for _, p := range l.Payments {
		if strings.HasPrefix(p.PartnerReferenceNo, "KILL") {
			ledgerPay[p.PartnerReferenceNo] = p
		}
	}
	if len(ledgerPay) != items {
		t.Errorf("the ledger holds %d payments with the prefix KILL, want %d (one per occurrence)", len(ledgerPay), items)
	}
	perCharge := map[string]int{}
	for _, c := range v.Charges {
		p, ok := ledgerPay[c.PartnerReferenceNo]
		if !ok || p.Status != doku.TxSuccess || p.ReferenceNo != c.ReferenceNo || p.Amount != int64(c.Amount) {
			t.Errorf("%s attempt %d (%s): state says %s referenceNo %q, ledger %+v; journal: %s", c.Address, c.Attempt, c.PartnerReferenceNo,
				c.Status, c.ReferenceNo, p, journal(v.Operations, c.PartnerReferenceNo))
		}
		perCharge[c.Address]++
	}
	if len(perCharge) != items {
		t.Errorf("the state holds attempts for %d charges, want %d", len(perCharge), items)
	}
	for addr, n := range perCharge {
		if n != 1 {
			t.Errorf("%s: %d attempts in the state, want 1", addr, n)
		}
	}
	for addr, r := range v.Refunds {
		if r.Status != state.RefundSucceeded || refundNo[r.PartnerRefundNo] != r.RefundNo {
			t.Errorf("%s: state says %s refundNo %q, ledger %q", addr, r.Status, r.RefundNo, refundNo[r.PartnerRefundNo])
		}
	}
	calls := sb.calls(t)
	during := func(op string) int64 { return callsKilling[op] - callsBefore[op] }
	after := func(op string) int64 { return calls[op] - callsBefore[op] }
	t.Logf("%d kills: %d after the daemon served, %d in a cycle that had called DOKU, %d as a refund or payment request reached the sandbox, %d with a journalled operation left open; "+
		"while killing: %d refund, %d payment, %d status requests; in all: %d refund, %d payment, %d status, %d balance requests, for %d refunds and %d charges; "+
		"%d journalled operations", kills, served, midCycle, atRequest, leftOpen, during("refund"), during("payment"), during("status"),
		after("refund"), after("payment"), after("status"), after("balance"), items, items, len(v.Operations))
}

// killAtRequest returns, to kill p, as soon as the sandbox counts an op
// request more than when p started (the request then waits out the
// sandbox's latency), or after 3 s if none comes (that work is done): ok
// says which.
func killAtRequest(tb testing.TB, sb *sandboxProc, p *ddctlProc, op string) (ok bool) {
	tb.Helper()
	before := sb.calls(tb)[op]
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && !p.exited(); time.Sleep(2 * time.Millisecond) {
		if sb.calls(tb)[op] > before {
			return true
		}
	}
	return false
}

// customerPaysWhileDown lets the customer settle the payments a killed
// daemon left open in its journal, if the sandbox processed them (it
// does so after its latency; a request cut short may never be): it
// returns once they are settled at the sandbox, or after 2 s.
func customerPaysWhileDown(tb testing.TB, sb *sandboxProc, dir string) {
	tb.Helper()
	open := map[string]bool{}
	for _, op := range readState(tb, dir).Operations {
		if op.Status.Open() && op.Kind == state.KindCharge {
			open[op.IdempotencyKey] = true
		}
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		settled := 0
		for _, p := range sb.ledger(tb).Payments {
			if open[p.PartnerReferenceNo] && p.Status != doku.TxPending {
				settled++
			}
		}
		if settled == len(open) {
			return
		}
	}
}

// journal is what the state's journal says of the requests under key.
func journal(ops []state.Operation, key string) string {
	var out []string
	for _, op := range ops {
		if op.IdempotencyKey == key {
			out = append(out, fmt.Sprintf("op %d run %d %s %q", op.ID, op.RunID, op.Status, op.Message))
		}
	}
	return strings.Join(out, "; ")
}

// interruptedCycle reports whether a killed daemon's last cycle had called
// DOKU and not ended: its log has a call after the last cycle's line.
func interruptedCycle(p *ddctlProc) bool {
	lines, _, _ := p.stderr.snapshot()
	called := false
	for _, s := range lines {
		var m logLine
		if json.Unmarshal([]byte(s), &m) != nil {
			continue
		}
		switch m.str("msg") {
		case "cycle", "cycle ended early":
			called = false
		case "doku call":
			called = true
		}
	}
	return called
}

// TestDaemonSecondInstance starts a second daemon on the state a first
// one runs on: it exits 1, names the first's pid, and never serves; the
// first keeps its lease.
func TestDaemonSecondInstance(t *testing.T) {
	sb := startSandbox(t)
	sb.pay(t, "INV-1", 10000)
	dir := writeConfig(t, sb, "refund \"r\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	adoptPayer(t, sb, dir, nil)
	mustApply(t, dir)
	first := startDaemon(t, dir, "-listen=127.0.0.1:0")

	second := startDaemonProc(t, dir, "-listen=127.0.0.1:0")
	if code := second.exitCode(t); code != 1 {
		t.Fatalf("the second daemon exited %d, want 1", code)
	}
	stderr := second.stderr.all()
	if !strings.Contains(stderr, "another ddctl daemon runs on") || !strings.Contains(stderr, fmt.Sprintf("pid %d ", first.pid())) {
		t.Errorf("the second daemon's error does not say that pid %d runs on the state:\n%s", first.pid(), stderr)
	}
	if out := second.stdout.all(); strings.Contains(out, "listening") {
		t.Errorf("the second daemon printed a listening line:\n%s", out)
	}
	if code, _ := first.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("the first daemon's /healthz: HTTP %d", code)
	}
	if held := first.metric(t, "ddctl_daemon_lease_held"); held != 1 {
		t.Errorf("the first daemon's ddctl_daemon_lease_held = %v, want 1", held)
	}
	t.Logf("second daemon: %s", strings.TrimSpace(stderr))
}

// TestDaemonSIGTERM stops a daemon with SIGTERM while it makes refunds,
// one at a time, against a sandbox that answers in 300 ms: the daemon
// finishes and records the call in flight, exits 0 (so within its
// -shutdown-timeout) and says so; a restart makes the rest, and the
// ledger holds each refund once.
func TestDaemonSIGTERM(t *testing.T) {
	const n = 6
	sb := startSandbox(t, "-latency=300ms")
	var cfg strings.Builder
	for i := range n {
		ref := fmt.Sprintf("INV-%d", i)
		sb.pay(t, ref, int64(10000+i))
		// Due for the daemon's clock, not yet for the apply's.
		fmt.Fprintf(&cfg, "refund \"r%d\" {\n  payment    = %q\n  binding    = binding.payer\n  not_before = %q\n}\n", i, ref, nineAM.Format(time.RFC3339))
	}
	dir := writeConfig(t, sb, cfg.String())
	adoptPayer(t, sb, dir, nil)
	mustApply(t, dir)
	clock := newTestClock(nineAM.Add(time.Minute))
	args := func() []string {
		return []string{"-listen=127.0.0.1:0", clock.startAt(), "-parallelism=1", "-shutdown-timeout=10s", "-reconcile-every=1h"}
	}
	d := startDaemon(t, dir, args()...)
	waitFor(t, "a refund request at the sandbox", func() bool { return sb.calls(t)["refund"] > 0 })
	d.signal(t, syscall.SIGTERM)
	if code := d.exitCode(t); code != 0 {
		t.Fatalf("after SIGTERM the daemon exited %d, want 0", code)
	}
	if out := d.stdout.all(); !strings.Contains(out, "ddctl daemon stopped.") {
		t.Errorf("the daemon did not say it stopped:\n%s", out)
	}
	v := readState(t, dir)
	if open := v.openOperations(); open != 0 {
		t.Errorf("SIGTERM left %d journalled operations open; the call in flight was to be recorded", open)
	}
	done := 0
	for _, r := range v.Refunds {
		if r.Status == state.RefundSucceeded {
			done++
		}
	}
	inLedger := len(sb.ledger(t).Refunds)
	if done != inLedger {
		t.Errorf("after SIGTERM the state has %d refunds succeeded, the ledger %d", done, inLedger)
	}
	if done == n {
		t.Errorf("the first daemon made all %d refunds: SIGTERM came after the cycle, so it tested nothing", n)
	}

	d = startDaemon(t, dir, args()...)
	waitFor(t, "every refund made", func() bool {
		v = readState(t, dir)
		k := 0
		for _, r := range v.Refunds {
			if r.Status == state.RefundSucceeded {
				k++
			}
		}
		return k == n
	})
	d.signal(t, syscall.SIGTERM)
	if code := d.exitCode(t); code != 0 {
		t.Errorf("the second daemon exited %d after SIGTERM, want 0", code)
	}
	byPayment := map[string]int{}
	l := sb.ledger(t)
	for _, r := range l.Refunds {
		byPayment[r.PartnerReferenceNo]++
	}
	for i := range n {
		if k := byPayment[fmt.Sprintf("INV-%d", i)]; k != 1 {
			t.Errorf("INV-%d: %d refunds in the ledger, want 1", i, k)
		}
	}
	t.Logf("SIGTERM after %d of %d refunds; the restart made %d; sandbox calls %v", done, n, len(l.Refunds)-done, sb.calls(t))
}

// TestDaemonSIGHUP sends SIGHUP to a daemon: it re-reads the doku block
// and runs a cycle triggered by "reload". A doku block broken on disk is
// refused and the daemon goes on with the one it has.
func TestDaemonSIGHUP(t *testing.T) {
	sb := startSandbox(t)
	sb.pay(t, "INV-1", 10000)
	dir := writeConfig(t, sb, "refund \"r\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	adoptPayer(t, sb, dir, nil)
	mustApply(t, dir)
	d := startDaemon(t, dir, "-listen=127.0.0.1:0")
	i, _ := d.waitCycle(t, 0, nil)

	d.signal(t, syscall.SIGHUP)
	i, _ = d.waitLog(t, i+1, "SIGHUP: reloading the doku block", nil)
	i, _ = d.waitCycle(t, i+1, func(m logLine) bool { return m.str("trigger") == "reload" })
	if got := d.metric(t, `ddctl_reconcile_runs_total{result="success",trigger="reload"}`); got != 1 {
		t.Errorf("reload cycles that succeeded: %v, want 1", got)
	}

	path := filepath.Join(dir, "doku.hcl")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("doku {\n  environment = \"sandbox\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(t, syscall.SIGHUP)
	i, failed := d.waitLog(t, i+1, "reload failed; keeping the running configuration", nil)
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(t, syscall.SIGHUP)
	d.waitCycle(t, i+1, func(m logLine) bool { return m.str("trigger") == "reload" })
	if code, _ := d.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the reloads: HTTP %d", code)
	}
	t.Logf("a broken doku block: %q", failed.str("error"))
}

// TestDaemonNeedsApply starts a daemon on a new state, to which nothing
// was applied (the payer was only imported, as an operator does before
// the first apply): /readyz answers 503 and says to run ddctl apply. After
// ddctl apply in the same directory, the daemon becomes ready without a
// restart.
func TestDaemonNeedsApply(t *testing.T) {
	sb := startSandbox(t)
	sb.pay(t, "INV-1", 10000)
	dir := writeConfig(t, sb, "refund \"r\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	adoptPayer(t, sb, dir, nil)
	// The default period (5 min): a new apply is noticed within seconds
	// all the same.
	d := startDaemon(t, dir, "-listen=127.0.0.1:0")
	d.waitCycle(t, 0, nil)
	code, body := d.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "run ddctl apply") {
		t.Fatalf("/readyz before any apply: HTTP %d %q, want 503 saying to run ddctl apply", code, body)
	}
	if code, _ := d.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: HTTP %d, want 200 (the process serves)", code)
	}

	mustApply(t, dir)
	waitFor(t, "/readyz 200 after the apply", func() bool {
		code, _ := d.get(t, "/readyz")
		return code == http.StatusOK
	})
	if n := len(sb.ledger(t).Refunds); n != 1 {
		t.Errorf("the ledger holds %d refunds, want 1 (made by the apply)", n)
	}
	t.Logf("before the apply /readyz said %q", strings.TrimSpace(body))
}

// TestDaemonStartAtRefusedInProduction: -start-at moves the clock that
// decides when customers are charged, so against production, and against
// DOKU's own sandbox (a remote service with real credentials), the daemon
// refuses to start, before it opens the state or listens. Only a
// simulator on this machine may have its clock moved.
func TestDaemonStartAtRefusedInProduction(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := doku.EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, environment := range []string{"production", "sandbox"} {
		t.Run(environment, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "merchant.pem"), pem, 0o600); err != nil {
				t.Fatal(err)
			}
			hcl := fmt.Sprintf(`doku {
  environment      = %q
  client_id        = "BRN-0001"
  client_secret    = "sk-live-not-real"
  private_key_file = "merchant.pem"
}
`, environment)
			if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := runDDCTL(t, dir, "daemon", "-listen=127.0.0.1:0", "-start-at=2026-12-01T08:59:00+07:00")
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if !strings.Contains(errOut, `-start-at`) || !strings.Contains(errOut, `allowed only against a simulator on this machine`) || !strings.Contains(errOut, fmt.Sprintf("%q", environment)) {
				t.Errorf("the error does not say that -start-at is for a local simulator only:\n%s", errOut)
			}
			if strings.Contains(out, "listening") {
				t.Errorf("it served:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(dir, "ddctl.db")); err == nil {
				t.Errorf("it created the state file")
			}
			t.Logf("%s", strings.TrimSpace(errOut))
		})
	}
}

// jwtRe matches a JSON Web Token: DOKU's access tokens (B2B and customer)
// and the tokens the daemon issues to DOKU are all RS256 JWTs, so any
// bearer token of either side in a log has this shape.
var jwtRe = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}`)

// canaries are the secrets of a test's daemon by what they are: the
// sandbox's client secret, each binding's authCode (and customer token,
// if the binding row has one), and the access tokens DOKU issued that the
// state caches (the B2B token and the customer tokens). extra adds others
// (name, value, name, …).
func canaries(tb testing.TB, sb *sandboxProc, dir string, extra ...string) map[string]string {
	tb.Helper()
	out := map[string]string{"the client secret": sb.creds.ClientSecret}
	authCodes := 0
	for v, what := range stateSecrets(tb, filepath.Join(dir, "ddctl.db"), nil, "") {
		out[what] = v
		if strings.HasSuffix(what, "'s authCode") {
			authCodes++
		}
	}
	if authCodes == 0 {
		tb.Fatal("no binding has an authCode in the state: nothing to look for")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = extra[i+1]
	}
	for name, v := range out {
		if len(v) < 8 {
			tb.Fatalf("canary %s is %q: too short to look for", name, v)
		}
	}
	return out
}

// checkNoLeaks fails tb if the daemon's stdout or stderr holds any of
// secrets or any JWT, or if a line above debug level holds any of quiet:
// what a notification's body says that only a debug line may repeat
// (secrets redact themselves; bodies are never logged). Each
// leak is reported once per stream, with its first line, redacted.
func checkNoLeaks(tb testing.TB, p *ddctlProc, secrets, quiet map[string]string) {
	tb.Helper()
	redact := func(line string) string {
		for name, v := range secrets {
			line = strings.ReplaceAll(line, v, "<"+name+">")
		}
		return jwtRe.ReplaceAllString(line, "<JWT>")
	}
	for _, l := range []*lineLog{p.stdout, p.stderr} {
		leaks := map[string]int{} // what leaked: lines
		first := map[string]int{} // and its first line
		found := func(what string, n int) {
			if leaks[what]++; leaks[what] == 1 {
				first[what] = n
			}
		}
		lines, _, _ := l.snapshot()
		for n, line := range lines {
			for name, v := range secrets {
				if strings.Contains(line, v) {
					found(name, n)
				}
			}
			if jwtRe.MatchString(line) {
				found("a bearer token (a JWT)", n)
			}
			var m logLine
			if json.Unmarshal([]byte(line), &m) == nil && m.str("level") == "DEBUG" {
				continue
			}
			for name, v := range quiet {
				if strings.Contains(line, v) {
					found(name+" above debug level", n)
				}
			}
		}
		for what, count := range leaks {
			n := first[what]
			tb.Errorf("%s: %d lines hold %s; the first, line %d, redacted: %.300s", l.name, count, what, n+1, redact(lines[n]))
		}
	}
}

// checkStateHasNo fails tb if the state file, or its write-ahead log,
// holds any of secrets in clear.
func checkStateHasNo(tb testing.TB, dir string, secrets map[string]string) {
	tb.Helper()
	for _, name := range []string{"ddctl.db", "ddctl.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		for what, v := range secrets {
			if bytes.Contains(b, []byte(v)) {
				tb.Errorf("%s holds %s", name, what)
			}
		}
	}
}

// TestDaemonNotificationFlagsRefused: notification settings that are
// unknown, or under which nothing would authenticate a notification, are
// refused at start with what is wrong and what to use, before the
// configuration or the state is read.
func TestDaemonNotificationFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-notification-mode=token-only", "-notification-token=any"},
			[]string{"-notification-mode token-only", "-notification-token any", "nothing would authenticate", "-notification-token required"}},
		{[]string{"-notification-signature-optional", "-notification-token=any"},
			[]string{"-notification-signature-optional", "-notification-token any", "-notification-token required"}},
		{[]string{"-notification-token=optional"}, []string{`-notification-token "optional" is unknown`, "required", "any"}},
		{[]string{"-notification-mode=whichever"}, []string{`-notification-mode "whichever" is unknown`, "symmetric", "asymmetric", "token-only"}},
	} {
		dir := t.TempDir()
		out, errOut, code := runDDCTL(t, dir, append([]string{"daemon", "-listen=127.0.0.1:0"}, tc.args...)...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", tc.args, code, out, errOut)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: the error does not say %q:\n%s", tc.args, w, errOut)
			}
		}
		if strings.Contains(errOut, "configuration") || strings.Contains(out, "listening") {
			t.Errorf("%v: it went on to the configuration or served:\nstdout:\n%s\nstderr:\n%s", tc.args, out, errOut)
		}
		t.Logf("%v: %s", tc.args, strings.TrimSpace(errOut))
	}
}
