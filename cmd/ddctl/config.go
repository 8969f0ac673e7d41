package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// listFlag collects a repeatable flag such as -var.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// configFlags are the flags of every command that reads the configuration.
type configFlags struct {
	vars    listFlag
	sandbox string
	local   bool // set by commands that touch only the local state: no doku block is read
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.vars, "var", "set a variable: `NAME=VALUE` (repeatable)")
	fs.StringVar(&c.sandbox, "sandbox", "", "run against an embedded sandbox whose data lives in `DIR`; its doku block is used")
}

// env is what a command works with once wired.
type env struct {
	cfg     *spec.Config
	sandbox *embeddedSandbox // nil unless -sandbox
}

func (e *env) close() {
	if e.sandbox != nil {
		e.sandbox.close()
	}
}

// load starts the embedded sandbox if asked (its doku.hcl joins the
// configuration), then loads and validates the configuration, printing
// nothing. e is nil when diags has errors or err is set; err is a failure
// to start the sandbox, not a problem of the configuration.
func load(ctx context.Context, cf configFlags) (e *env, diags hcl.Diagnostics, err error) {
	e = &env{}
	opts := spec.LoadOptions{Dir: ".", Vars: cf.vars, Env: os.Environ(), WithoutDOKU: cf.local}
	if cf.sandbox != "" {
		sb, err := startEmbeddedSandbox(ctx, cf.sandbox)
		if err != nil {
			return nil, nil, fmt.Errorf("embedded sandbox: %w", err)
		}
		e.sandbox = sb
		opts.ExtraFiles = []string{filepath.Join(cf.sandbox, sandbox.DOKUFile)}
	}
	e.cfg, _, diags = spec.Load(opts)
	if diags.HasErrors() {
		e.close()
		return nil, diags, nil
	}
	return e, diags, nil
}

// loadConfig is load for the commands that go on to act: it prints the
// diagnostics and returns nil after printing why it cannot go on.
func loadConfig(ctx context.Context, s streams, cf configFlags) *env {
	e, diags, err := load(ctx, cf)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return nil
	}
	printDiagnostics(s.stderr, diags)
	return e
}

// printDiagnostics writes each diagnostic as file:line:col, then its
// detail, so that editors and CI logs can jump to it.
func printDiagnostics(w io.Writer, diags hcl.Diagnostics) {
	for _, d := range diags {
		sev := "Error"
		if d.Severity == hcl.DiagWarning {
			sev = "Warning"
		}
		if d.Subject != nil {
			// No source line is quoted: the line could hold a literal
			// secret (the sandbox's generated doku.hcl does).
			fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary)
		} else {
			fmt.Fprintf(w, "%s: %s\n", sev, d.Summary)
		}
		if d.Detail != "" {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(d.Detail, "\n", "\n  "))
		}
	}
}

// lockFlags are the flags of commands that change the state.
type lockFlags struct {
	timeout time.Duration
}

func (l *lockFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&l.timeout, "lock-timeout", 30*time.Second, "wait up to `DURATION` for another run to release the state")
}

// wired is a loaded configuration with its state (locked) and DOKU client.
type wired struct {
	*env
	lock   *state.Lock
	store  *state.Store
	client *doku.Client
	engine *reconcile.Engine
}

func (w *wired) close() {
	if w.store != nil {
		w.store.Close()
	}
	if w.lock != nil {
		w.lock.Unlock()
	}
	w.env.close()
}

// wire locks and opens the state and builds the DOKU client for a loaded
// configuration. On error it closes what it opened, e included.
// review asks for a plan that reads no customer secret (plan -review); it
// is also what a plan gets with no state key against DOKU itself.
func wire(ctx context.Context, s streams, e *env, command string, lf lockFlags, parallelism int, review bool) (*wired, error) {
	w, err := wireParts(ctx, s, e, command, lf, parallelism, review)
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func wireParts(ctx context.Context, s streams, e *env, command string, lf lockFlags, parallelism int, review bool) (*wired, error) {
	w := &wired{env: e}
	d := e.cfg.DOKU
	key, err := doku.LoadPrivateKey(d.PrivateKeyFile)
	if err != nil {
		return w, fmt.Errorf("doku block: %w; private_key_file must name the merchant's RSA private key (PEM)", err)
	}
	run := newRun(command, e.cfg)
	w.lock, err = state.AcquireLock(ctx, e.cfg.Settings.State, state.LockInfo{
		Operation: command, PID: run.PID, Host: run.Host, Who: run.User, Created: run.StartedAt,
	}, lf.timeout)
	if err != nil {
		return w, err
	}
	opts, err := stateOptions(d)
	if err != nil {
		return w, err
	}
	// A plan with no key, as on an unreviewed change, reads no customer
	// secret: it shows every call, charges with their balances unchecked,
	// and cannot be saved or applied.
	review = review || (command == "plan" && opts.Cipher == nil && !opts.AllowPlaintextSecrets)
	if review {
		opts.Cipher, opts.AllowPlaintextSecrets, opts.WithoutSecrets = nil, false, true
	}
	w.store, err = state.OpenWith(e.cfg.Settings.State, opts)
	if err != nil {
		return w, err
	}
	if command != "plan" {
		// Under the lock: secrets stored before they had a scope are
		// sealed again in this doku block's.
		if _, err := w.store.RescopeSecrets(ctx); err != nil {
			return w, err
		}
	}
	warnRestored(s, w.store)
	w.client, err = newClient(d, key, w.store, logger(s), nil)
	if err != nil {
		return w, err
	}
	w.engine = &reconcile.Engine{DOKU: w.client, Store: w.store, Logger: logger(s), Parallelism: parallelism, NoCustomerSecrets: review,
		SettleTime: d.SettleTime}
	if at := os.Getenv(crashAtEnv); at != "" {
		if w.engine.CrashFunc, err = crashFunc(at, s.stderr); err != nil {
			return w, err
		}
	}
	return w, nil
}

// crashAtEnv is a TEST HOOK, not a setting: DDCTL_TEST_CRASH_AT=
// <point>:<kind>[:<n>] makes the process die, as kill -9 would, the n-th
// time (default 1) an action of kind (charge, refund, bind, unbind)
// reaches point (reconcile.CrashPoints: before-intent, after-intent,
// after-send, after-response, before-outcome, after-outcome, and
// mid-intent, mid-outcome where a kind writes twice). Crash tests
// (crashpoint_test.go) set it; unset, as everywhere else, apply has no
// hook at all.
const crashAtEnv = "DDCTL_TEST_CRASH_AT"

// crashFunc is the reconcile.Engine.CrashFunc that spec (the value of
// crashAtEnv) asks for. It exits with status 137 (as a SIGKILL's) through
// os.Exit, so that no deferred function runs: the state is not closed
// and the lock not released (the kernel releases the flock), exactly as
// after a kill -9 at that point.
func crashFunc(spec string, stderr io.Writer) (func(reconcile.CrashPoint, reconcile.ActionKind, string), error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("%s=%q: want <point>:<kind>[:<n>]", crashAtEnv, spec)
	}
	point, kind, n := reconcile.CrashPoint(parts[0]), reconcile.ActionKind(parts[1]), int64(1)
	points := reconcile.CrashPoints(kind)
	if points == nil {
		return nil, fmt.Errorf("%s=%q: kind %q is not charge, refund, bind or unbind", crashAtEnv, spec, parts[1])
	}
	if !slices.Contains(points, point) {
		return nil, fmt.Errorf("%s=%q: a %s passes no point %q (it passes %v)", crashAtEnv, spec, kind, parts[0], points)
	}
	if len(parts) == 3 {
		v, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%s=%q: n must be a whole number from 1", crashAtEnv, spec)
		}
		n = v
	}
	var seen atomic.Int64
	return func(p reconcile.CrashPoint, k reconcile.ActionKind, address string) {
		if p != point || k != kind || seen.Add(1) != n {
			return
		}
		fmt.Fprintf(stderr, "ddctl: %s: crashing at %s of %s (%s)\n", crashAtEnv, p, address, spec)
		os.Exit(137)
	}, nil
}

// newClient builds the DOKU client of a doku block; its token cache is the
// state. now is the client's clock (nil: the wall clock).
func newClient(d spec.DOKU, key *rsa.PrivateKey, store *state.Store, log *slog.Logger, now func() time.Time) (*doku.Client, error) {
	return doku.NewClient(doku.Config{
		BaseURL:           d.BaseURL,
		ClientID:          d.ClientID,
		ClientSecret:      d.ClientSecret,
		PrivateKey:        key,
		IPAddress:         d.IPAddress,
		RequestsPerSecond: d.RequestsPerSecond,
		TokenCache:        store,
		Logger:            log,
		NowFunc:           now,
		RetryBudget:       retryBudget(d.RetryBudget),
		RetryWaitMax:      d.RetryWaitMax,
	})
}

// retryBudget is doku.retry_budget as the client takes it: 0 there means
// no retry within the run, which the client spells as negative.
func retryBudget(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// stateOptions reads the state key from DDCTL_STATE_KEY or the file
// DDCTL_STATE_KEY_FILE names (64 hex digits or base64 of 32 bytes). With
// no key, secrets (tokens, authCodes) are kept in the clear only against
// a simulator on this machine (spec.DOKU.Local), never merely because the
// environment is "sandbox": DOKU's own sandbox is a remote service.
func stateOptions(d spec.DOKU) (state.OpenOptions, error) {
	opts := state.OpenOptions{AllowPlaintextSecrets: d.Local(), SecretScope: state.Scope(d.Environment, d.ClientID)}
	raw := os.Getenv("DDCTL_STATE_KEY")
	if path := os.Getenv("DDCTL_STATE_KEY_FILE"); raw == "" && path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return opts, fmt.Errorf("DDCTL_STATE_KEY_FILE: %w", err)
		}
		raw = string(b)
	}
	if raw == "" {
		return opts, nil
	}
	key, err := state.ParseKey(raw)
	if err != nil {
		return opts, fmt.Errorf("state key: %w", err)
	}
	opts.Cipher, err = state.NewCipher(key)
	return opts, err
}

var _ reconcile.DOKU = (*doku.Client)(nil)
var _ reconcile.Store = (*state.Store)(nil)
var _ doku.TokenCache = (*state.Store)(nil)

// logger logs to stderr at the level DDCTL_LOG names (debug, info, warn,
// error); by default it is silent, as the command's output says it all.
func logger(s streams) *slog.Logger {
	level, ok := logLevel()
	if !ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: level}))
}

// logLevel is the level DDCTL_LOG names; ok is false when it names none.
func logLevel() (level slog.Level, ok bool) {
	switch strings.ToLower(os.Getenv("DDCTL_LOG")) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}

// newRun describes this invocation for the runs table.
func newRun(command string, cfg *spec.Config) state.Run {
	r := state.Run{Command: command, StartedAt: time.Now(), SpecDigest: cfg.Digest, PID: os.Getpid()}
	if u, err := user.Current(); err == nil {
		r.User = u.Username
	}
	r.Host, _ = os.Hostname()
	if out, err := exec.Command("git", "-C", cfg.Dir, "rev-parse", "HEAD").Output(); err == nil {
		r.GitCommit = strings.TrimSpace(string(out))
	}
	return r
}

// embeddedSandbox is a sandbox served in this process on a loopback port.
type embeddedSandbox struct {
	srv  *sandbox.Server
	http *http.Server
	url  string
}

func startEmbeddedSandbox(ctx context.Context, dir string) (*embeddedSandbox, error) {
	cfg, err := sandbox.PrepareDir(dir)
	if err != nil {
		return nil, err
	}
	seed, err := sandbox.ReadSeed(filepath.Join(dir, sandbox.SeedFile))
	if err != nil {
		return nil, err
	}
	cfg.AutoApprove = seed.AutoApproveDelay()
	srv, err := sandbox.Open(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := srv.SeedFromFile(ctx, filepath.Join(dir, sandbox.SeedFile)); err != nil {
		srv.Close()
		return nil, err
	}
	// What fell due while no command ran (a customer's approval, with
	// auto_approve) is settled before ddctl asks.
	if err := srv.Tick(ctx); err != nil {
		srv.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, err
	}
	e := &embeddedSandbox{srv: srv, http: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}, url: "http://" + ln.Addr().String()}
	go e.http.Serve(ln)
	if err := sandbox.WriteClientFiles(dir, e.url, cfg); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *embeddedSandbox) close() {
	e.http.Close()
	e.srv.Close()
}

// statsLine is the sandbox's call counts, for the end of a run.
func (e *embeddedSandbox) statsLine() string {
	st := e.srv.Stats()
	names := make([]string, 0, len(st.Calls))
	for n := range st.Calls {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, st.Calls[n])
	}
	return "Embedded sandbox calls this run: " + strings.Join(parts, " ")
}

// parseAt reads -at: RFC 3339, or empty for now.
func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("-at wants an RFC 3339 time such as 2026-12-01T09:00:00+07:00")
	}
	return t, nil
}

// warnRestored says, on stderr, that the state went back in time when it
// was opened: a restore ddctl state restore did not make.
func warnRestored(s streams, st *state.Store) {
	r := st.RestoredAtOpen()
	if r == nil {
		return
	}
	fmt.Fprintf(s.stderr, "Warning: the state %s went back in time (%s).\n"+
		"  It is recorded as restored (generation %d): plans saved before now are refused, and every key the next runs\n"+
		"  would send, defer or record without a record of it since is first asked about at DOKU. Use ddctl state restore\n"+
		"  to put a copy back.\n", st.Path(), r.How, r.Generation)
}
