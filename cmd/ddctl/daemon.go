package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ddctl/ddctl/internal/daemon"
	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// daemonFlags are the daemon's options.
type daemonFlags struct {
	vars              listFlag
	listen            string
	adminListen       string
	reconcileEvery    time.Duration
	lock              lockFlags
	shutdownTimeout   time.Duration
	parallelism       int
	notificationMode  string
	notificationToken string
	signatureOpt      bool
	eventURL          string
	startAt           string
}

func runDaemon(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprintln(s.stderr, `Usage: ddctl daemon [options]

Reconciles the configuration last applied to the state (ddctl apply keeps a
snapshot of it), never unreviewed edits on disk: fires each charge occurrence
and not_before refund at its time, re-runs a full reconcile periodically, and
serves DOKU's notifications. The configuration on disk gives only the doku
block (how DOKU is reached) and the state's path. SIGHUP re-reads them.

Endpoints: on -listen, what DOKU calls: POST `+daemon.NotificationPath+`,
POST `+doku.PathTokenB2B+`, GET /healthz. On -admin-listen, for the
operator only: GET /healthz, GET /readyz, GET /metrics.

Options:`)
		fs.PrintDefaults()
	}
	var f daemonFlags
	fs.Var(&f.vars, "var", "set a variable: `NAME=VALUE` (repeatable)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "serve DOKU's notifications on `ADDR` (put TLS in front of it)")
	fs.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:8081", "serve /readyz and /metrics on `ADDR`, apart from DOKU's listener; keep it private (\"\" serves them nowhere)")
	fs.DurationVar(&f.reconcileEvery, "reconcile-every", daemon.DefaultReconcileEvery, "run a full reconcile every `DURATION` (±10% jitter)")
	f.lock.register(fs)
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", daemon.DefaultShutdownTimeout, "on SIGTERM, wait up to `DURATION` for calls in flight")
	fs.IntVar(&f.parallelism, "parallelism", reconcile.DefaultParallelism, "at most `N` calls at once")
	fs.StringVar(&f.notificationMode, "notification-mode", string(doku.DefaultNotificationMode), "verify DOKU's notifications in this one `mode`: symmetric (HMAC-SHA512 with the client secret, as DOKU documents), asymmetric (DOKU's public key) or token-only (no X-SIGNATURE)")
	fs.StringVar(&f.notificationToken, "notification-token", string(doku.DefaultNotificationToken), "which bearer token a notification must carry, `required|any`: required, one this daemon's token endpoint issued; any, any token, still present (with -notification-mode symmetric it is in what X-SIGNATURE signs)")
	fs.BoolVar(&f.signatureOpt, "notification-signature-optional", false, "accept a notification without X-SIGNATURE on its bearer token alone (one that has it must still verify); needs -notification-token required")
	fs.StringVar(&f.eventURL, "event-url", "", "post every status change to `URL`, HMAC-signed with the secret in DDCTL_EVENT_SECRET")
	fs.StringVar(&f.startAt, "start-at", "", "sandbox only: run the daemon's clock from `TIME` (RFC 3339), for rehearsals and tests")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(s, "daemon", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if f.parallelism < 1 {
		return usageError(s, "daemon", "-parallelism must be at least 1")
	}
	if f.reconcileEvery < time.Second {
		return usageError(s, "daemon", "-reconcile-every must be at least 1s")
	}
	if msg := checkNotificationFlags(f); msg != "" {
		return usageError(s, "daemon", msg)
	}
	var eventSecret secret.Value
	if f.eventURL != "" {
		eventSecret = secret.New(os.Getenv("DDCTL_EVENT_SECRET"))
		if eventSecret.IsZero() {
			return usageError(s, "daemon", "-event-url needs the signing secret in DDCTL_EVENT_SECRET")
		}
	}
	log := daemonLogger(s)

	e := loadConfig(ctx, s, configFlags{vars: f.vars})
	if e == nil {
		return exitError
	}
	cfg := e.cfg
	now := time.Now
	if f.startAt != "" {
		t, err := time.Parse(time.RFC3339, f.startAt)
		if err != nil {
			return usageError(s, "daemon", "-start-at wants an RFC 3339 time such as 2026-12-01T08:59:00+07:00")
		}
		if !cfg.DOKU.Local() {
			// DOKU's own sandbox is a remote service with real credentials:
			// only a simulator on this machine may have its clock moved.
			fmt.Fprintf(s.stderr, "Error: -start-at moves the clock that decides when customers are charged; it is allowed only against a simulator on this machine (environment = \"sandbox\" with a loopback base_url; the doku block at %s:%d has environment = %q, base_url %q)\n",
				cfg.DOKU.DeclRange.Filename, cfg.DOKU.DeclRange.Start.Line, cfg.DOKU.Environment, cfg.DOKU.BaseURL)
			return exitError
		}
		offset := time.Until(t)
		now = func() time.Time { return time.Now().Add(offset) }
	}

	run := newRun("daemon", cfg)
	run.GitCommit = "" // the applied snapshot's run has the reviewed commit
	info := state.LockInfo{Operation: "daemon", PID: run.PID, Host: run.Host, Who: run.User}
	path := cfg.Settings.State
	store, err := openDaemonState(ctx, path, info, f.lock.timeout, cfg.DOKU)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer store.Close()

	parts, err := daemonParts(cfg, store, log, now, f)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: -listen: %v\n", err)
		return exitError
	}
	var admin net.Listener
	adminNote := ""
	if f.adminListen != "" {
		if admin, err = net.Listen("tcp", f.adminListen); err != nil {
			ln.Close()
			fmt.Fprintf(s.stderr, "Error: -admin-listen: %v\n", err)
			return exitError
		}
		adminNote = fmt.Sprintf("; admin (/readyz, /metrics) on http://%s", admin.Addr())
	}
	holder := state.LeaseInfo{PID: run.PID, Host: run.Host, Who: run.User} // its ID is the daemon's
	d, err := daemon.New(daemon.Config{
		Store: store,
		Parts: parts,
		LockFunc: func(ctx context.Context) (func(), error) {
			info.Created = time.Now()
			l, err := state.AcquireLock(ctx, path, info, f.lock.timeout)
			if err != nil {
				return nil, err
			}
			return func() { l.Unlock() }, nil
		},
		Listener:        ln,
		AdminListener:   admin,
		Holder:          holder,
		Run:             run,
		ReconcileEvery:  f.reconcileEvery,
		ShutdownTimeout: f.shutdownTimeout,
		EventURL:        f.eventURL,
		EventSecret:     eventSecret,
		NowFunc:         now,
		Logger:          log,
		StartFunc: func() {
			fmt.Fprintf(s.stdout, "ddctl daemon: state %s; listening on http://%s (DOKU notifications at %s)%s\n", path, ln.Addr(), daemon.NotificationPath, adminNote)
		},
	})
	if err != nil {
		ln.Close()
		if admin != nil {
			admin.Close()
		}
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading the doku block")
			ne, diags, err := load(ctx, configFlags{vars: f.vars})
			if err != nil || ne == nil {
				log.Error("reload failed; keeping the running configuration", "error", errors.Join(err, diagsError(diags)))
				continue
			}
			if env := ne.cfg.DOKU.Environment; env != cfg.DOKU.Environment {
				// The state was opened, and -start-at allowed, for the
				// environment the daemon started with.
				ne.close()
				log.Error("reload refused: the doku block's environment changed; restart the daemon to change it", "was", cfg.DOKU.Environment, "now", env)
				continue
			}
			p, err := daemonParts(ne.cfg, store, log, now, f)
			ne.close()
			if err != nil {
				log.Error("reload failed; keeping the running configuration", "error", err)
				continue
			}
			d.Reload(p)
		}
	}()

	err = d.Run(ctx)
	var held *state.LeaseHeldError
	switch {
	case errors.As(err, &held):
		fmt.Fprintf(s.stderr, "Error: another ddctl daemon runs on %s: %v\n", path, err)
		return exitError
	case err != nil:
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	fmt.Fprintln(s.stdout, "ddctl daemon stopped.")
	return exitOK
}

// openDaemonState opens the state under its lock, so that a first open's
// migrations never race an apply; the daemon then takes the lock only for
// each cycle.
func openDaemonState(ctx context.Context, path string, info state.LockInfo, timeout time.Duration, d spec.DOKU) (*state.Store, error) {
	info.Created = time.Now()
	l, err := state.AcquireLock(ctx, path, info, timeout)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	opts, err := stateOptions(d)
	if err != nil {
		return nil, err
	}
	st, err := state.OpenWith(path, opts)
	if err != nil {
		return nil, err
	}
	if _, err := st.RescopeSecrets(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// daemonParts builds what SIGHUP rebuilds: the DOKU client, the engine,
// the notification receiver and the snapshot loader, from the doku block.
func daemonParts(cfg *spec.Config, store *state.Store, log *slog.Logger, now func() time.Time, f daemonFlags) (daemon.Parts, error) {
	d := cfg.DOKU
	key, err := doku.LoadPrivateKey(d.PrivateKeyFile)
	if err != nil {
		return daemon.Parts{}, fmt.Errorf("doku block: %w; private_key_file must name the merchant's RSA private key (PEM)", err)
	}
	if d.DOKUPublicKeyFile == "" {
		return daemon.Parts{}, fmt.Errorf("%s: the daemon needs doku_public_key_file, DOKU's public key, to verify DOKU's token requests and notifications", d.DeclRange)
	}
	pub, err := doku.LoadPublicKey(d.DOKUPublicKeyFile)
	if err != nil {
		return daemon.Parts{}, fmt.Errorf("doku block: doku_public_key_file: %w", err)
	}
	client, err := newClient(d, key, store, log, now)
	if err != nil {
		return daemon.Parts{}, err
	}
	recv, err := doku.NewReceiver(doku.ReceiverConfig{
		ClientID:          d.ClientID,
		ClientSecret:      d.ClientSecret,
		DOKUPublicKey:     pub,
		SigningKey:        key,
		Mode:              doku.NotificationMode(f.notificationMode),
		Token:             doku.NotificationToken(f.notificationToken),
		SignatureOptional: f.signatureOpt,
		NowFunc:           now,
	})
	if err != nil {
		return daemon.Parts{}, err
	}
	return daemon.Parts{
		Engine: &reconcile.Engine{DOKU: client, Store: store, Logger: log, Parallelism: f.parallelism, NowFunc: now,
			SettleTime: d.SettleTime},
		Receiver: recv,
		LoadSpecFunc: func(snapshot []byte) (*spec.Config, error) {
			return spec.FromSnapshot(snapshot, d, cfg.Dir)
		},
	}, nil
}

// checkNotificationFlags refuses, before anything is opened, notification
// flags that are unknown or that together would let a notification through
// that nothing authenticates; it returns what is wrong, naming the flags.
func checkNotificationFlags(f daemonFlags) string {
	mode, token := doku.NotificationMode(f.notificationMode), doku.NotificationToken(f.notificationToken)
	switch {
	case mode != doku.ModeSymmetric && mode != doku.ModeAsymmetric && mode != doku.ModeTokenOnly:
		return fmt.Sprintf("-notification-mode %q is unknown: want %s, %s or %s", f.notificationMode, doku.ModeSymmetric, doku.ModeAsymmetric, doku.ModeTokenOnly)
	case token != doku.TokenIssued && token != doku.TokenAny:
		return fmt.Sprintf("-notification-token %q is unknown: want %s (a token this daemon issued) or %s", f.notificationToken, doku.TokenIssued, doku.TokenAny)
	case mode == doku.ModeTokenOnly && token == doku.TokenAny:
		return fmt.Sprintf("-notification-mode %s with -notification-token %s: nothing would authenticate a notification (token-only ignores X-SIGNATURE, and any token is taken), so anyone could send one; use -notification-token %s, or -notification-mode %s",
			doku.ModeTokenOnly, doku.TokenAny, doku.TokenIssued, doku.ModeSymmetric)
	case f.signatureOpt && token == doku.TokenAny:
		return fmt.Sprintf("-notification-signature-optional with -notification-token %s: a notification without X-SIGNATURE would be taken on a token nobody checks; use -notification-token %s, or drop -notification-signature-optional",
			doku.TokenAny, doku.TokenIssued)
	}
	if err := doku.CheckNotificationSettings(mode, token, f.signatureOpt); err != nil {
		return err.Error() // a combination the cases above do not name
	}
	return ""
}

// daemonLogger logs to stderr: text on a terminal, JSON otherwise (for a
// log collector), at the level DDCTL_LOG names (default info).
func daemonLogger(s streams) *slog.Logger {
	level, _ := logLevel() // info unless DDCTL_LOG says otherwise
	opts := &slog.HandlerOptions{Level: level}
	if isTerminal(s.stderr) {
		return slog.New(slog.NewTextHandler(s.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(s.stderr, opts))
}

// diagsError is the configuration's errors as one error, for a log line.
func diagsError(diags interface{ HasErrors() bool }) error {
	if diags == nil || !diags.HasErrors() {
		return nil
	}
	return fmt.Errorf("%v", diags)
}
