package state_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ddctl/ddctl/internal/state"
)

func newKey(tb testing.TB) []byte {
	tb.Helper()
	key := make([]byte, state.KeySize)
	rand.Read(key)
	return key
}

func newCipher(tb testing.TB) *state.Cipher {
	tb.Helper()
	c, err := state.NewCipher(newKey(tb))
	if err != nil {
		tb.Fatalf("NewCipher: %v", err)
	}
	return c
}

func TestCipher(t *testing.T) {
	const canary = "canary-6f1d2c"
	c := newCipher(t)
	sealed, err := c.Seal([]byte(canary), "bindings/binding.alice/auth_code")
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 1+12+len(canary)+16 {
		t.Fatalf("len=%d, want version + nonce + ciphertext + tag", len(sealed))
	}
	if bytes.Contains(sealed, []byte(canary)) {
		t.Fatal("the plaintext shows in the sealed value")
	}

	t.Run("OK", func(t *testing.T) {
		got, err := c.Open(sealed, "bindings/binding.alice/auth_code")
		if err != nil || string(got) != canary {
			t.Fatalf("Open=%q, %v, want the plaintext", got, err)
		}
	})
	t.Run("FreshNonce", func(t *testing.T) {
		again, _ := c.Seal([]byte(canary), "bindings/binding.alice/auth_code")
		if bytes.Equal(again, sealed) {
			t.Fatal("two seals of one value are equal")
		}
	})
	t.Run("WrongKey", func(t *testing.T) {
		_, err := newCipher(t).Open(sealed, "bindings/binding.alice/auth_code")
		if !errors.Is(err, state.ErrSecretUnreadable) {
			t.Fatalf("err=%v, want ErrSecretUnreadable", err)
		}
		if strings.Contains(err.Error(), canary) {
			t.Fatalf("the error shows the plaintext: %v", err)
		}
	})
	t.Run("OtherRowOrColumn", func(t *testing.T) {
		for _, aad := range []string{"bindings/binding.bob/auth_code", "bindings/binding.alice/customer_token",
			"tokens/binding.alice/auth_code/token", "", "bindings/binding.alice/auth_cod"} {
			if _, err := c.Open(sealed, aad); !errors.Is(err, state.ErrSecretUnreadable) {
				t.Errorf("Open with AAD %q: err=%v, want ErrSecretUnreadable", aad, err)
			}
		}
	})
	t.Run("Damaged", func(t *testing.T) {
		for i := range sealed {
			for _, bit := range []byte{0x01, 0x80} {
				b := bytes.Clone(sealed)
				b[i] ^= bit
				if _, err := c.Open(b, "bindings/binding.alice/auth_code"); err == nil {
					t.Fatalf("flipping bit %#x of byte %d went unnoticed", bit, i)
				}
			}
		}
		for n := range len(sealed) {
			if _, err := c.Open(sealed[:n], "bindings/binding.alice/auth_code"); err == nil {
				t.Fatalf("value truncated to %d bytes opened", n)
			}
		}
	})
	t.Run("NilCipher", func(t *testing.T) {
		var none *state.Cipher
		if _, err := none.Seal([]byte("x"), "a"); !errors.Is(err, state.ErrNoStateKey) {
			t.Fatalf("Seal: err=%v, want ErrNoStateKey", err)
		}
		if _, err := none.Open(sealed, "a"); !errors.Is(err, state.ErrNoStateKey) {
			t.Fatalf("Open: err=%v, want ErrNoStateKey", err)
		}
	})
}

func TestNewCipherKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := state.NewCipher(make([]byte, n)); err == nil {
			t.Errorf("NewCipher accepted a %d-byte key", n)
		}
	}
}

func TestParseKey(t *testing.T) {
	key := newKey(t)
	for name, s := range map[string]string{
		"Hex":          hex.EncodeToString(key),
		"HexUpper":     strings.ToUpper(hex.EncodeToString(key)),
		"Base64":       base64.StdEncoding.EncodeToString(key),
		"FileNewline":  base64.StdEncoding.EncodeToString(key) + "\n",
		"SpacesAround": "  " + hex.EncodeToString(key) + " \r\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := state.ParseKey(s)
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("ParseKey=%x, %v, want the key", got, err)
			}
		})
	}
	bad := map[string]string{
		"Empty":      "",
		"ShortHex":   hex.EncodeToString(key[:16]),
		"LongHex":    hex.EncodeToString(append(bytes.Clone(key), 0)),
		"NotHex":     strings.Repeat("zz", 32),
		"Base64Of16": base64.StdEncoding.EncodeToString(key[:16]),
		"URLBase64":  base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)),
		"Passphrase": "correct horse battery staple",
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := state.ParseKey(s)
			if err == nil {
				t.Fatal("accepted")
			}
			if s != "" && strings.Contains(err.Error(), strings.TrimSpace(s)) {
				t.Fatalf("the error shows the key: %v", err)
			}
		})
	}
}

// Open never panics and opens nothing but what Seal made for that AAD.
func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, state.KeySize)
	c, err := state.NewCipher(key)
	if err != nil {
		f.Fatal(err)
	}
	const aad = "bindings/binding.alice/auth_code"
	sealed, _ := c.Seal([]byte("token"), aad)
	f.Add(sealed, aad)
	f.Add(sealed, "bindings/binding.bob/auth_code")
	f.Add(sealed[:len(sealed)-1], aad)
	f.Add(sealed[:13], aad)
	f.Add([]byte{}, aad)
	f.Add([]byte{0x00, 't', 'o', 'k'}, aad)
	f.Add([]byte{0x01}, aad)
	f.Add([]byte{0x02, 1, 2, 3}, aad)
	f.Add(bytes.Repeat([]byte{0x01}, 64), "")
	f.Fuzz(func(t *testing.T, b []byte, a string) {
		got, err := c.Open(b, a)
		if err != nil {
			if got != nil {
				t.Fatalf("Open returned %q with error %v", got, err)
			}
			return
		}
		// Each fuzzing process seals its own seed under a fresh nonce, so
		// compare what was opened, not the bytes.
		if a != aad || string(got) != "token" {
			t.Fatalf("Open(%x, %q) = %q, nil: opened something Seal did not make for that AAD", b, a, got)
		}
	})
}
