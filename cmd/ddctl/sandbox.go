package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ddctl/ddctl/internal/doku/sandbox"
)

func runSandbox(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	listen := fs.String("listen", "127.0.0.1:8787", "serve on `ADDR`")
	dir := fs.String("dir", ".ddctl-sandbox", "keep keys, credentials and the ledger in `DIR`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(s, "sandbox", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	cfg, err := sandbox.PrepareDir(*dir)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	srv, err := sandbox.Open(cfg)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer srv.Close()
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
