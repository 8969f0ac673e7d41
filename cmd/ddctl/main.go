// Command ddctl plans and applies refunds through DOKU's SNAP API for Allo
// Bank direct debit, from HCL files kept in git. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes, as Terraform's: 2 only from plan -detailed-exitcode.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2
)

// streams are the command's standard streams.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	plain          bool // -no-color or NO_COLOR: no terminal control sequences
}

const usage = `Usage: ddctl [-chdir=DIR] [-no-color] COMMAND [options]
       ddctl -version

Commands:
  validate   check the configuration; no call to DOKU
  fmt        rewrite *.hcl files into the canonical layout
  plan       show the calls that apply would make
  apply      make the calls of a plan
  show       print a saved plan (-json: as JSON)
  state      list, show, rm (forget), mv (rename) or restore (put a copy back) what the state file holds
  force-unlock  remove a dead run's lock record
  import     adopt a binding made outside ddctl (its authCode on stdin)
  history    list the journalled operations, with their runs
  daemon     reconcile the applied configuration continuously; serve DOKU's notifications
  sandbox    run a local DOKU simulator
  version    print the version (also ddctl -version)
  help       this overview; help COMMAND: the command's options

Run "ddctl COMMAND -h" for a command's options.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := streams{stdin: stdin, stdout: stdout, stderr: stderr}
	global := flag.NewFlagSet("ddctl", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	chdir := global.String("chdir", "", "switch to `DIR` before doing anything else")
	showVersion := global.Bool("version", false, "print the version")
	noColor := global.Bool("no-color", false, "no terminal control sequences (also when NO_COLOR is set)")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	if *showVersion {
		fmt.Fprintf(stdout, "ddctl %s\n", version)
		return exitOK
	}
	s.plain = *noColor || os.Getenv("NO_COLOR") != ""
	if *chdir != "" {
		if err := os.Chdir(*chdir); err != nil {
			fmt.Fprintf(stderr, "Error: -chdir: %v\n", err)
			return exitError
		}
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	cmd, cmdArgs := rest[0], rest[1:]
	switch cmd {
	case "help":
		// ddctl help [COMMAND]: the overview, or the command's options.
		if len(cmdArgs) == 0 {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return run(ctx, []string{cmdArgs[0], "-h"}, stdin, stdout, stderr)
	case "validate":
		return runValidate(ctx, cmdArgs, s)
	case "fmt":
		return runFmt(ctx, cmdArgs, s)
	case "plan":
		return runPlan(ctx, cmdArgs, s)
	case "apply":
		return runApply(ctx, cmdArgs, s)
	case "show":
		return runShow(ctx, cmdArgs, s)
	case "state":
		return runState(ctx, cmdArgs, s)
	case "force-unlock":
		return runForceUnlock(ctx, cmdArgs, s)
	case "import":
		return runImport(ctx, cmdArgs, s)
	case "history":
		return runHistory(ctx, cmdArgs, s)
	case "daemon":
		return runDaemon(ctx, cmdArgs, s)
	case "sandbox":
		return runSandbox(ctx, cmdArgs, s)
	case "version":
		fmt.Fprintf(stdout, "ddctl %s\n", version)
		return exitOK
	}
	fmt.Fprintf(stderr, "Error: unknown command %q.\n\n%s", cmd, usage)
	return exitError
}

// version is the release this binary is.
const version = "v0.1.0-dev"

// usageError prints a usage problem with a hint, as litestream does.
func usageError(s streams, cmd, msg string) int {
	fmt.Fprintf(s.stderr, "Error: %s\nTry: ddctl %s -h\n", msg, cmd)
	return exitError
}

// parseFlags parses a command's flags. When it returns ok false, the
// command exits with code: 0 after -h, 1 after a flag error (which the
// flag set has printed).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	}
	return exitError, false
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
