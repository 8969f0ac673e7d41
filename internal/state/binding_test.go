package state_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func openWith(tb testing.TB, path string, opts state.OpenOptions) *state.Store {
	tb.Helper()
	s, err := state.OpenWith(path, opts)
	if err != nil {
		tb.Fatalf("OpenWith: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// reveal compares secrets by their content in go-cmp.
var reveal = cmp.Transformer("reveal", func(v secret.Value) string { return v.Reveal() })

func TestBindings(t *testing.T) {
	ctx := context.Background()
	s := openWith(t, filepath.Join(t.TempDir(), "ddctl.db"), state.OpenOptions{Cipher: newCipher(t)})
	alice := state.Binding{Address: "binding.alice", CustomerID: "C-1", Phone: "6281234567890", Status: state.BindingPending,
		ReferenceNo: "R-1", RedirectURL: "https://pay.example/otp", AuthCode: secret.New("auth-1")}
	if err := s.PutBinding(ctx, alice, t0); err != nil {
		t.Fatalf("PutBinding: %v", err)
	}
	alice.Status = state.BindingActive
	alice.CustomerToken = secret.New("tok-1")
	alice.TokenExpiresAt = t0.Add(time.Hour)
	if err := s.PutBinding(ctx, alice, t0.Add(time.Minute)); err != nil {
		t.Fatalf("PutBinding (update): %v", err)
	}
	got, err := s.Bindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := alice
	want.CreatedAt, want.UpdatedAt = t0, t0.Add(time.Minute)
	want.HoldsAuthCode = true
	if diff := cmp.Diff(map[string]state.Binding{"binding.alice": want}, got, reveal); diff != "" {
		t.Fatalf("Bindings (-want +got):\n%s", diff)
	}
	one, ok, err := s.Binding(ctx, "binding.alice")
	if err != nil || !ok || one.CustomerToken.Reveal() != "tok-1" {
		t.Fatalf("Binding=%+v %v %v", one, ok, err)
	}
	if _, ok, err := s.Binding(ctx, "binding.nobody"); ok || err != nil {
		t.Fatalf("Binding of an unknown address: %v %v", ok, err)
	}

	t.Run("ErrCustomerBound", func(t *testing.T) {
		twin := state.Binding{Address: "binding.twin", CustomerID: "C-1", Status: state.BindingPending}
		if err := s.PutBinding(ctx, twin, t0); !errors.Is(err, state.ErrCustomerBound) {
			t.Fatalf("err=%v, want ErrCustomerBound", err)
		}
		// Once alice is unbound, the customer may bind again.
		unbound := alice
		unbound.Status = state.BindingUnbound
		if err := s.PutBinding(ctx, unbound, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBinding(ctx, twin, t0); err != nil {
			t.Fatalf("binding again after unbind: %v", err)
		}
	})
	t.Run("BadStatus", func(t *testing.T) {
		if err := s.PutBinding(ctx, state.Binding{Address: "binding.x", CustomerID: "C-9", Status: "bound"}, t0); err == nil {
			t.Fatal("a status outside the CHECK was stored")
		}
	})
}

func TestSecretNeedsKey(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	withSecret := state.Binding{Address: "binding.alice", CustomerID: "C-1", Status: state.BindingPending, AuthCode: secret.New("auth-canary")}
	err := s.PutBinding(ctx, withSecret, t0)
	if !errors.Is(err, state.ErrNoStateKey) {
		t.Fatalf("PutBinding without a key: err=%v, want ErrNoStateKey", err)
	}
	if !strings.Contains(err.Error(), "DDCTL_STATE_KEY") || strings.Contains(err.Error(), "auth-canary") {
		t.Fatalf("error %q should say what to set, and not show the secret", err)
	}
	if err := s.PutToken(ctx, "b2b", secret.New("tok"), t0); !errors.Is(err, state.ErrNoStateKey) {
		t.Fatalf("PutToken without a key: err=%v, want ErrNoStateKey", err)
	}
	// Nothing was written.
	if got, err := s.Bindings(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Bindings=%v, %v, want none", got, err)
	}
	// A binding with no secret yet needs no key.
	if err := s.PutBinding(ctx, state.Binding{Address: "binding.bob", CustomerID: "C-2", Status: state.BindingPending}, t0); err != nil {
		t.Fatalf("PutBinding with no secret: %v", err)
	}
}

func TestSecretKeyMismatch(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	s := openWith(t, path, state.OpenOptions{Cipher: newCipher(t)})
	if err := s.PutBinding(ctx, state.Binding{Address: "binding.alice", CustomerID: "C-1", Status: state.BindingActive,
		AuthCode: secret.New("auth-1"), CustomerToken: secret.New("tok-1")}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, "b2b", secret.New("b2b-token"), t0); err != nil {
		t.Fatal(err)
	}
	s.Close()

	t.Run("WrongKey", func(t *testing.T) {
		other := openWith(t, path, state.OpenOptions{Cipher: newCipher(t)})
		if _, err := other.Bindings(ctx); !errors.Is(err, state.ErrSecretUnreadable) {
			t.Fatalf("Bindings: err=%v, want ErrSecretUnreadable", err)
		}
		// Token names are keyed too: another key's cache is not seen.
		if _, _, ok, err := other.Token(ctx, "b2b"); ok || err != nil {
			t.Fatalf("Token: ok=%v err=%v, want none cached", ok, err)
		}
	})
	t.Run("NoKey", func(t *testing.T) {
		none := open(t, path)
		if _, err := none.Bindings(ctx); !errors.Is(err, state.ErrNoStateKey) {
			t.Fatalf("Bindings: err=%v, want ErrNoStateKey", err)
		}
		// Not even the sandbox's plaintext allowance reads a sealed value.
		sandbox := openWith(t, path, state.OpenOptions{AllowPlaintextSecrets: true})
		if _, err := sandbox.Bindings(ctx); !errors.Is(err, state.ErrNoStateKey) {
			t.Fatalf("Bindings: err=%v, want ErrNoStateKey", err)
		}
		if _, _, ok, err := sandbox.Token(ctx, "b2b"); ok || err != nil {
			t.Fatalf("Token: ok=%v err=%v, want none cached under the plain name", ok, err)
		}
	})
}

func TestPlaintextSandboxSecrets(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	sandbox := openWith(t, path, state.OpenOptions{AllowPlaintextSecrets: true})
	b := state.Binding{Address: "binding.alice", CustomerID: "C-1", Status: state.BindingActive,
		AuthCode: secret.New("auth-1"), CustomerToken: secret.New("tok-1")}
	if err := sandbox.PutBinding(ctx, b, t0); err != nil {
		t.Fatalf("sandbox PutBinding: %v", err)
	}
	if err := sandbox.PutToken(ctx, "b2b", secret.New("b2b-token"), t0.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := sandbox.Bindings(ctx)
	if err != nil || got["binding.alice"].CustomerToken.Reveal() != "tok-1" {
		t.Fatalf("sandbox Bindings=%+v, %v", got, err)
	}
	if tok, exp, ok, err := sandbox.Token(ctx, "b2b"); err != nil || !ok || tok.Reveal() != "b2b-token" || !exp.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("sandbox Token=%v %v %v %v", tok.Reveal(), exp, ok, err)
	}
	sandbox.Close()

	keyed := openWith(t, path, state.OpenOptions{Cipher: newCipher(t)})
	_, err = keyed.Bindings(ctx)
	if !errors.Is(err, state.ErrPlaintextSecret) {
		t.Fatalf("keyed Bindings: err=%v, want ErrPlaintextSecret", err)
	}
	if !strings.Contains(err.Error(), "binding.alice") || strings.Contains(err.Error(), "auth-1") {
		t.Fatalf("error %q should name the row and not show the secret", err)
	}
	// A keyed state names its cached tokens by HMAC: one cached in the
	// clear under a plain name is not found (RescopeSecrets drops it).
	if _, _, ok, err := keyed.Token(ctx, "b2b"); ok || err != nil {
		t.Fatalf("keyed Token: ok=%v err=%v, want none under the keyed name", ok, err)
	}
	if _, err := open(t, path).Bindings(ctx); !errors.Is(err, state.ErrPlaintextSecret) {
		t.Fatalf("unkeyed Bindings: err=%v, want ErrPlaintextSecret", err)
	}
	// A sandbox state given a key as well reads what it stored before,
	// and seals what it stores now.
	both := openWith(t, path, state.OpenOptions{Cipher: newCipher(t), AllowPlaintextSecrets: true})
	if got, err := both.Bindings(ctx); err != nil || got["binding.alice"].AuthCode.Reveal() != "auth-1" {
		t.Fatalf("keyed sandbox Bindings=%+v, %v", got, err)
	}
	if err := both.PutBinding(ctx, state.Binding{Address: "binding.bob", CustomerID: "C-2", Status: state.BindingActive,
		AuthCode: secret.New("auth-2")}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(t, path, state.OpenOptions{AllowPlaintextSecrets: true}).Bindings(ctx); !errors.Is(err, state.ErrNoStateKey) {
		t.Fatalf("an authCode sealed by a keyed sandbox, read without the key: err=%v, want ErrNoStateKey", err)
	}
}

// A ciphertext copied into another row or column of the file does not
// open, every time.
func TestSecretSwappedRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	c := newCipher(t)
	s := openWith(t, path, state.OpenOptions{Cipher: c})
	for i := range 50 {
		b := state.Binding{Address: fmt.Sprintf("binding.c%d", i), CustomerID: fmt.Sprintf("C-%d", i), Status: state.BindingActive,
			AuthCode: secret.New(fmt.Sprintf("auth-%d", i)), CustomerToken: secret.New(fmt.Sprintf("tok-%d", i))}
		if err := s.PutBinding(ctx, b, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutToken(ctx, "b2b", secret.New("b2b-token"), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bindings(ctx); err != nil {
		t.Fatalf("Bindings before tampering: %v", err)
	}
	s.Close()

	db := rawDB(t, path)
	// Copy one row's value into every other row and column, one at a time.
	moves := []struct{ from, to string }{
		{`SELECT auth_code FROM bindings WHERE address = 'binding.c0'`, `UPDATE bindings SET auth_code = ? WHERE address = ?`},
		{`SELECT auth_code FROM bindings WHERE address = 'binding.c0'`, `UPDATE bindings SET customer_token = ? WHERE address = ?`},
		{`SELECT customer_token FROM bindings WHERE address = 'binding.c0'`, `UPDATE bindings SET auth_code = ? WHERE address = ?`},
		{`SELECT token FROM tokens`, `UPDATE bindings SET customer_token = ? WHERE address = ?`}, // the one token, under its keyed name
	}
	for _, m := range moves {
		var v []byte
		if err := db.QueryRow(m.from).Scan(&v); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 50; i++ {
			addr := fmt.Sprintf("binding.c%d", i)
			if _, err := db.Exec(m.to, v, addr); err != nil {
				t.Fatal(err)
			}
			s := openWith(t, path, state.OpenOptions{Cipher: c})
			_, ok, err := s.Binding(ctx, addr)
			s.Close()
			if !errors.Is(err, state.ErrSecretUnreadable) || ok {
				t.Fatalf("%s into %s: ok=%v err=%v, want ErrSecretUnreadable", m.to, addr, ok, err)
			}
		}
	}
	// A binding's token moved into the token cache does not open either.
	var v []byte
	if err := db.QueryRow(`SELECT customer_token FROM bindings WHERE address = 'binding.c0'`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE tokens SET token = ?`, v); err != nil { // the one token, b2b, under its keyed name
		t.Fatal(err)
	}
	s = openWith(t, path, state.OpenOptions{Cipher: c})
	if _, _, _, err := s.Token(ctx, "b2b"); !errors.Is(err, state.ErrSecretUnreadable) {
		t.Fatalf("Token after swap: err=%v, want ErrSecretUnreadable", err)
	}
	if b, ok, err := s.Binding(ctx, "binding.c0"); err != nil || !ok || b.AuthCode.Reveal() != "auth-0" {
		t.Fatalf("the untouched row: %v %v", ok, err)
	}
}

// With a key, a secret never reaches the file (nor its WAL) in the clear.
func TestSecretNotInFile(t *testing.T) {
	ctx := context.Background()
	const canary = "CANARY-3b9e-customer-token"
	path := filepath.Join(t.TempDir(), "ddctl.db")
	s := openWith(t, path, state.OpenOptions{Cipher: newCipher(t)})
	if err := s.PutBinding(ctx, state.Binding{Address: "binding.alice", CustomerID: "C-1", Status: state.BindingActive,
		AuthCode: secret.New(canary + "-auth"), CustomerToken: secret.New(canary)}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, "b2b", secret.New(canary+"-b2b"), t0); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		for _, name := range []string{path, path + "-wal", path + "-shm"} {
			b, err := os.ReadFile(name)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("CANARY")) {
				t.Fatalf("%s holds the secret in the clear", filepath.Base(name))
			}
		}
	}
	check() // the WAL still holds the pages
	s.Close()
	check() // checkpointed into the file
}

// rawDB opens the state file bypassing Store, to tamper with it.
func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+state.EscapePath(path)+"?_busy_timeout=10000")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestSidecarFileModes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	first := open(t, path)
	if _, err := first.StartRun(ctx, state.Run{Command: "plan", StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("new %s: %v, %v, want mode 0600", filepath.Base(name), fi, err)
		}
	}
	// Sidecars left wider by some other tool (SQLite fixes only empty
	// ones itself) are narrowed by the next open.
	for _, name := range []string{path + "-wal", path + "-shm"} {
		if err := os.Chmod(name, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	open(t, path)
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(name), err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode=%v, want 0600", filepath.Base(name), fi.Mode().Perm())
		}
	}
}

// Under a state key the token cache's names are keyed too: a customer
// token's name holds a digest of the authCode, which the file must not
// hold in a form anyone could check guesses against.
func TestTokenNamesKeyed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	c := newCipher(t)
	s := openWith(t, path, state.OpenOptions{Cipher: c})
	sum := sha256.Sum256([]byte("the-customers-authcode"))
	name := "b2b2c " + hex.EncodeToString(sum[:]) + " https://api.doku.com"
	if err := s.PutToken(ctx, name, secret.New("customer-token"), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if tok, _, ok, err := s.Token(ctx, name); err != nil || !ok || tok.Reveal() != "customer-token" {
		t.Fatalf("Token: %v %v", ok, err)
	}
	s.Close()
	var names []string
	rows, err := rawDB(t, path).Query(`SELECT name FROM tokens`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	if len(names) != 1 || strings.Contains(names[0], hex.EncodeToString(sum[:])) || strings.Contains(names[0], "b2b2c") {
		t.Fatalf("token rows named %q: the authCode's digest is in the file", names)
	}
}

// A state file readable by others (copied, restored from a backup) is
// made 0600 when it is opened, not only when it is created.
func TestStateFileModeTightened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddctl.db")
	openWith(t, path, state.OpenOptions{}).Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openWith(t, path, state.OpenOptions{}).Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after opening, want 0600", fi.Mode().Perm())
	}
}

// A state opened WithoutSecrets and no key reads its bindings with their
// secrets left out, where without it ErrNoStateKey stops the read: what a
// plan of an unreviewed change may know.
func TestBindingsWithoutSecrets(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	s := openWith(t, path, state.OpenOptions{Cipher: newCipher(t)})
	if err := s.PutBinding(ctx, state.Binding{Address: "binding.alice", CustomerID: "C-1", Phone: "6281234567890", Status: state.BindingActive,
		AuthCode: secret.New("auth-1"), CustomerToken: secret.New("tok-1")}, t0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := openWith(t, path, state.OpenOptions{}).Bindings(ctx); !errors.Is(err, state.ErrNoStateKey) {
		t.Fatalf("Bindings with no key: %v, want ErrNoStateKey", err)
	}
	got, err := openWith(t, path, state.OpenOptions{WithoutSecrets: true}).Bindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := got["binding.alice"]
	if b.Status != state.BindingActive || b.CustomerID != "C-1" || !b.AuthCode.IsZero() || !b.CustomerToken.IsZero() {
		t.Fatalf("binding %+v, want it active with no secret", b)
	}
}

// A secret is sealed for its merchant account (the DOKU environment and
// client ID): opened for another, it does not open, so it is never sent
// there. A secret sealed before scopes opens in any, until RescopeSecrets
// seals it in the store's.
func TestSecretScope(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	c := newCipher(t)
	prod := state.Scope("production", "BRN-1")
	alice := state.Binding{Address: "binding.alice", CustomerID: "C-1", Status: state.BindingActive, AuthCode: secret.New("auth-1")}

	s := openWith(t, path, state.OpenOptions{Cipher: c, SecretScope: prod})
	if err := s.PutBinding(ctx, alice, t0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, other := range []string{state.Scope("sandbox", "BRN-1"), state.Scope("production", "BRN-2")} {
		if _, err := openWith(t, path, state.OpenOptions{Cipher: c, SecretScope: other}).Bindings(ctx); !errors.Is(err, state.ErrSecretUnreadable) {
			t.Fatalf("opened in scope %q: %v, want ErrSecretUnreadable", other, err)
		}
	}
	if got, err := openWith(t, path, state.OpenOptions{Cipher: c, SecretScope: prod}).Bindings(ctx); err != nil || got["binding.alice"].AuthCode.Reveal() != "auth-1" {
		t.Fatalf("its own scope: %v", err)
	}

	// Sealed before scopes: opens in any scope, then is sealed in one.
	legacy := filepath.Join(t.TempDir(), "ddctl.db")
	s = openWith(t, legacy, state.OpenOptions{Cipher: c})
	if err := s.PutBinding(ctx, alice, t0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	sandbox := state.Scope("sandbox", "BRN-1")
	if _, err := openWith(t, legacy, state.OpenOptions{Cipher: c, SecretScope: sandbox}).Bindings(ctx); err != nil {
		t.Fatalf("an unscoped secret in a scope: %v", err)
	}
	// A token an older ddctl cached under its plain name (which held an
	// authCode's digest) is dropped too.
	if _, err := rawDB(t, legacy).Exec(`INSERT INTO tokens (name, token, expires_at) VALUES ('b2b2c 8d0c2a70 https://api.doku.com', x'01', '')`); err != nil {
		t.Fatal(err)
	}
	s = openWith(t, legacy, state.OpenOptions{Cipher: c, SecretScope: prod})
	if n, err := s.RescopeSecrets(ctx); err != nil || n != 1 {
		t.Fatalf("RescopeSecrets: %d, %v; want 1", n, err)
	}
	var plain int
	if err := rawDB(t, legacy).QueryRow(`SELECT count(*) FROM tokens WHERE name NOT LIKE 'k1:%'`).Scan(&plain); err != nil || plain != 0 {
		t.Fatalf("%d tokens under plain names after RescopeSecrets (%v), want 0", plain, err)
	}
	if n, err := s.RescopeSecrets(ctx); err != nil || n != 0 {
		t.Fatalf("RescopeSecrets again: %d, %v; want 0", n, err)
	}
	s.Close()
	if _, err := openWith(t, legacy, state.OpenOptions{Cipher: c, SecretScope: sandbox}).Bindings(ctx); !errors.Is(err, state.ErrSecretUnreadable) {
		t.Fatalf("after rescoping, opened in another scope: %v, want ErrSecretUnreadable", err)
	}
	if got, err := openWith(t, legacy, state.OpenOptions{Cipher: c, SecretScope: prod}).Bindings(ctx); err != nil || got["binding.alice"].AuthCode.Reveal() != "auth-1" {
		t.Fatalf("after rescoping, its own scope: %v", err)
	}
}
