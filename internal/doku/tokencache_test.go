package doku_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/state"
)

// Tokens kept in the state serve later processes: a second client (a later
// run) pays for neither the B2B token nor the customer token. CustomerToken
// always asks DOKU, since its answer tells whether a binding is active; a
// token DOKU refused, and a customer token after an unbinding, leave the
// cache, so no later run uses them.
func TestTokensCachedInState(t *testing.T) {
	ctx := context.Background()
	sb := sandboxtest.New(t)
	key, err := state.ParseKey("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	if err != nil {
		t.Fatal(err)
	}
	cipher, err := state.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.OpenWith(filepath.Join(t.TempDir(), "ddctl.db"), state.OpenOptions{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	client := func() *doku.Client {
		cfg := sb.ClientConfig(t)
		cfg.TokenCache = st
		c, err := doku.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	want := func(step string, b2b, b2b2c int64) {
		t.Helper()
		if got := sb.Calls(doku.OpTokenB2B); got != b2b {
			t.Errorf("%s: %d B2B token calls, want %d", step, got, b2b)
		}
		if got := sb.Calls(doku.OpTokenB2B2C); got != b2b2c {
			t.Errorf("%s: %d customer token calls, want %d", step, got, b2b2c)
		}
	}

	first := client()
	opts := bind(t, sb, first, "100000", "cust-1")
	if _, err := first.Balance(ctx, opts); err != nil {
		t.Fatal(err)
	}
	want("first run", 1, 1)

	second := client()
	if _, err := second.Balance(ctx, opts); err != nil {
		t.Fatal(err)
	}
	want("second run", 1, 1)
	if _, err := second.CustomerToken(ctx, opts.AuthCode); err != nil {
		t.Fatal(err)
	}
	want("CustomerToken", 1, 2)

	// The sandbox's clock passes the B2B token's expiry: DOKU refuses it
	// (401), and the refused token leaves the cache with the answer.
	if err := sb.Server.Advance(ctx, doku.DefaultTokenLifetime+time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Balance(ctx, opts); doku.OutcomeOf(err) != doku.RetryLater {
		t.Fatalf("balance with an expired token: %v, want a retry-later refusal", err)
	}
	if _, err := client().Balance(ctx, opts); err != nil {
		t.Fatalf("a later run after the refusal: %v", err)
	}
	want("after the refusal", 2, 3)

	third := client()
	if _, err := third.Unbind(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := client().Balance(ctx, opts); err == nil {
		t.Fatal("a balance inquiry after the unbinding succeeded: a cached customer token answered for DOKU")
	}
	want("after the unbinding", 2, 4)
}
