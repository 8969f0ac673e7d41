package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
)

func runSandbox(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	listen := fs.String("listen", "127.0.0.1:8787", "serve on `ADDR`")
	dir := fs.String("dir", ".ddctl-sandbox", "keep keys, credentials and the ledger in `DIR`")
	autoApprove := fs.Duration("auto-approve", 0, "approve every binding and payment `AFTER` this delay (0: wait for the customer)")
	expiry := fs.Duration("expiry", sandbox.DefaultPaymentExpiry, "fail a binding or payment its customer has not confirmed within `DURATION`")
	notifyURL := fs.String("notify-url", "", "send payment notifications to `URL` (the merchant's; its token endpoint is asked first)")
	notifyMode := fs.String("notify-mode", string(doku.DefaultNotificationMode), "sign notifications in this `mode`: symmetric (HMAC-SHA512 with the client secret, as DOKU documents), asymmetric (DOKU's key) or token-only")
	maxSkew := fs.Duration("max-skew", 0, "refuse requests whose X-TIMESTAMP is further than `DURATION` from the sandbox's clock (0: accept any)")
	refundTokenOptional := fs.Bool("refund-customer-token-optional", false, "take refunds without Authorization-Customer (DOKU requires it; this relaxes the sandbox for tests)")
	refundPolicy := fs.String("refund-policy", sandbox.RefundFull, "allow `full` refunds only, or partial ones")
	// UNCONFIRMED readings of DOKU (sandbox.Config), switchable to see how
	// a merchant's client copes if DOKU turns out to answer otherwise.
	exchangeAny := fs.Bool("exchange-any-binding", false, "issue customer tokens for unconfirmed and removed bindings too (UNCONFIRMED: by default the exchange answers 403)")
	extIDZone := fs.String("external-id-zone", "WIB", "keep X-EXTERNAL-ID unique per calendar day in `WIB|UTC` (UNCONFIRMED)")
	var faults sandbox.Faults
	fs.DurationVar(&faults.Latency, "latency", 0, "delay every answer by `DURATION`")
	fs.DurationVar(&faults.Jitter, "jitter", 0, "and by up to `DURATION` more")
	fs.Float64Var(&faults.ErrorRate, "error-rate", 0, "answer this `FRACTION` of requests 500 before processing")
	fs.Float64Var(&faults.DropRate, "drop-rate", 0, "process this `FRACTION` of requests, then drop the connection")
	fs.Float64Var(&faults.RateLimitRate, "rate-limit-rate", 0, "answer this `FRACTION` of requests 429")
	fs.DurationVar(&faults.RetryAfter, "retry-after", time.Second, "with this Retry-After `DURATION`")
	fs.Float64Var(&faults.NotifyDropRate, "notify-drop-rate", 0, "never send this `FRACTION` of notifications")
	fs.Float64Var(&faults.NotifyDuplicateRate, "notify-duplicate-rate", 0, "send this `FRACTION` of notifications twice")
	fs.DurationVar(&faults.NotifyDelay, "notify-delay", 0, "send notifications `DURATION` late")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(s, "sandbox", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	zone := doku.ExternalIDZone
	switch *extIDZone {
	case "WIB":
	case "UTC":
		zone = time.UTC
	default:
		return usageError(s, "sandbox", fmt.Sprintf("-external-id-zone %q: want WIB or UTC", *extIDZone))
	}
	cfg, err := sandbox.PrepareDir(*dir)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	cfg.AutoApprove, cfg.PaymentExpiry, cfg.RefundPolicy, cfg.MaxSkew = *autoApprove, *expiry, *refundPolicy, *maxSkew
	cfg.NotifyURL, cfg.NotifyMode = *notifyURL, doku.NotificationMode(*notifyMode)
	cfg.RefundCustomerTokenOptional = *refundTokenOptional
	seed, err := sandbox.ReadSeed(filepath.Join(*dir, sandbox.SeedFile))
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: seed: %v\n", err)
		return exitError
	}
	cfg.AutoApprove = cmp.Or(cfg.AutoApprove, seed.AutoApproveDelay())
	cfg.ExchangeAnyBinding = *exchangeAny
	cfg.ExternalIDZone = zone
	srv, err := sandbox.Open(cfg)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer srv.Close()
	srv.SetFaults(faults)
	n, err := srv.SeedFromFile(ctx, filepath.Join(*dir, sandbox.SeedFile))
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: seed: %v\n", err)
		return exitError
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	url := "http://" + ln.Addr().String()
	if err := sandbox.WriteClientFiles(*dir, url, cfg); err != nil {
		ln.Close()
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	fmt.Fprintf(s.stdout, "DOKU sandbox listening on %s\n", url)
	if n > 0 {
		fmt.Fprintf(s.stdout, "Seeded from %s: %d payments.\n", filepath.Join(*dir, sandbox.SeedFile), n)
	}
	fmt.Fprintf(s.stdout, "Credentials: %s\nA ready doku block: %s\n", filepath.Join(*dir, sandbox.CredentialsFile), filepath.Join(*dir, sandbox.DOKUFile))

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	hs.Shutdown(shut)
	fmt.Fprintln(s.stdout, "Sandbox stopped.")
	return exitOK
}
