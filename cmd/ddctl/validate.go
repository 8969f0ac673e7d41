package main

import (
	"context"
	"flag"
	"fmt"
)

func runValidate(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var cf configFlags
	cf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(s, "validate", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	e := loadConfig(ctx, s, cf)
	if e == nil {
		return exitError
	}
	defer e.close()
	fmt.Fprintf(s.stdout, "Success! The configuration is valid: %d refunds.\n", len(e.cfg.Refunds))
	return exitOK
}
