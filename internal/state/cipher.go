package state

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ddctl/ddctl/internal/secret"
)

// KeySize is the length of a state key: AES-256.
const KeySize = 32

// The first byte of a stored secret says how the rest is to be read, so
// that a state written one way is never misread another way.
const (
	// versionPlaintext marks a secret stored as is, which only a state
	// opened for the sandbox writes or reads (OpenOptions.AllowPlaintextSecrets).
	versionPlaintext byte = 0x00
	// versionAESGCM marks version ‖ 12-byte nonce ‖ AES-256-GCM ciphertext
	// and tag, sealed with the version byte and the row's identity as AAD.
	versionAESGCM byte = 0x01
	// versionAESGCMScoped is versionAESGCM whose AAD also names the scope
	// the secret belongs to (the DOKU environment and client ID, Scope):
	// a value sealed for one merchant account does not open for another.
	versionAESGCMScoped byte = 0x02
)

const (
	nonceSize = 12
	tagSize   = 16
)

// ErrNoStateKey is returned when a secret is to be stored or read and the
// state was opened without a key (and not for the sandbox). Secrets are
// never written to the state file in the clear (principle 5, docs/principles.md).
var ErrNoStateKey = errors.New("the state file keeps secrets encrypted but no state key was given: set DDCTL_STATE_KEY or a key file")

// ErrPlaintextSecret is returned when a keyed state meets a secret that a
// sandbox state stored without a key. It is refused rather than trusted: a
// real state file never holds a secret in the clear.
var ErrPlaintextSecret = errors.New("the secret is stored unencrypted, as only a sandbox state without a key stores it; refusing it in a keyed state (was this state file made by ddctl sandbox?)")

// ErrSecretUnreadable is returned when a stored secret does not open: the
// key is not the one it was sealed with, the value was moved from another
// row or column, or it is damaged.
var ErrSecretUnreadable = errors.New("the secret cannot be decrypted: wrong state key, or the value was moved from another row or damaged")

// Cipher seals the secret columns of the state file with AES-256-GCM. The
// additional data is the identity of the row and column a value belongs
// to, so a ciphertext copied elsewhere in the file does not open. A Cipher
// is safe for concurrent use. A nil *Cipher means "no key".
type Cipher struct {
	aead    cipher.AEAD
	planKey []byte
	nameKey []byte // keys the names of cached tokens (tokenRow)
}

// NewCipher returns a Cipher for key, which must be exactly KeySize bytes.
// The error never includes the key.
func NewCipher(key []byte) (*Cipher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("state key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("state key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("state key: %w", err)
	}
	return &Cipher{aead: aead, planKey: subKey(key, "ddctl plan file signing key v1"), nameKey: subKey(key, "ddctl token name key v1")}, nil
}

// subKey derives a key for one purpose from the state key: HMAC-SHA256 of
// the purpose's label.
func subKey(key []byte, label string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// PlanKey is the key that signs saved plans: derived from the state key
// (HMAC-SHA256 of a fixed label), so that whoever can apply a plan can
// check it, and a plan file reveals nothing of the state key. Nil for a
// nil Cipher.
func (c *Cipher) PlanKey() []byte {
	if c == nil {
		return nil
	}
	return c.planKey
}

// ParseKey reads a state key as given in DDCTL_STATE_KEY or a key file:
// 64 hex characters, or the standard base64 encoding of 32 bytes;
// surrounding white space is ignored. The error never includes the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	if key, err := base64.StdEncoding.DecodeString(s); err == nil && len(key) == KeySize {
		return key, nil
	}
	return nil, fmt.Errorf("state key: want 64 hex characters or the base64 of %d bytes (got %d characters that are neither)", KeySize, len(s))
}

// Seal encrypts plaintext for the row and column named by aad, such as
// "bindings/binding.alice/auth_code". The result is a version byte, a
// random 12-byte nonce, and the ciphertext with its tag. A random nonce is
// safe for up to 2³² values under one key, far beyond a state file's
// life.
func (c *Cipher) Seal(plaintext []byte, aad string) ([]byte, error) {
	return c.SealIn("", plaintext, aad)
}

// SealIn is Seal for a scope (Scope): the value opens only with OpenIn
// and the same scope. An empty scope is Seal's format.
func (c *Cipher) SealIn(scope string, plaintext []byte, aad string) ([]byte, error) {
	if c == nil {
		return nil, ErrNoStateKey
	}
	version, ad := versionAESGCM, additionalData(versionAESGCM, aad)
	if scope != "" {
		version, ad = versionAESGCMScoped, scopedData(scope, aad)
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = version
	rand.Read(out[1:]) // never fails (crypto/rand)
	return c.aead.Seal(out, out[1:1+nonceSize], plaintext, ad), nil
}

// Scope names what a secret belongs to: the DOKU environment and the
// merchant's client ID. Not the host: the host is pinned per environment,
// and a proxy the runner puts in front of DOKU must not make every stored
// authCode unreadable.
func Scope(environment, clientID string) string { return environment + "\x00" + clientID }

func scopedData(scope, aad string) []byte {
	return append(append([]byte{versionAESGCMScoped}, scope...), append([]byte{0}, aad...)...)
}

// Open decrypts what Seal returned for the same aad. It fails with
// ErrSecretUnreadable for the wrong key, another row's or column's value,
// or damaged input, with ErrPlaintextSecret for a value a sandbox state
// stored unencrypted, and never panics. The error never includes the
// plaintext or the key.
func (c *Cipher) Open(ciphertext []byte, aad string) ([]byte, error) {
	return c.OpenIn("", ciphertext, aad)
}

// OpenIn opens what SealIn sealed for scope, and what Seal sealed before
// secrets had scopes (any scope opens those; Store.RescopeSecrets seals
// them again in theirs).
func (c *Cipher) OpenIn(scope string, ciphertext []byte, aad string) ([]byte, error) {
	if c == nil {
		return nil, ErrNoStateKey
	}
	if len(ciphertext) == 0 {
		return nil, fmt.Errorf("open secret %s: empty value: %w", aad, ErrSecretUnreadable)
	}
	var ad []byte
	switch ciphertext[0] {
	case versionAESGCM:
		ad = additionalData(versionAESGCM, aad)
	case versionAESGCMScoped:
		ad = scopedData(scope, aad)
	case versionPlaintext:
		return nil, fmt.Errorf("open secret %s: %w", aad, ErrPlaintextSecret)
	default:
		return nil, fmt.Errorf("open secret %s: unknown format version %d: %w", aad, ciphertext[0], ErrSecretUnreadable)
	}
	if len(ciphertext) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("open secret %s: truncated value: %w", aad, ErrSecretUnreadable)
	}
	nonce, sealed := ciphertext[1:1+nonceSize], ciphertext[1+nonceSize:]
	plaintext, err := c.aead.Open(nil, nonce, sealed, ad)
	if err != nil {
		if ciphertext[0] == versionAESGCMScoped {
			return nil, fmt.Errorf("open secret %s: %w (or it belongs to another DOKU environment or client ID than the doku block's)", aad, ErrSecretUnreadable)
		}
		return nil, fmt.Errorf("open secret %s: %w", aad, ErrSecretUnreadable)
	}
	return plaintext, nil
}

// additionalData binds a value to its format version and to its row and
// column (table ‖ primary key ‖ column, after the version).
func additionalData(version byte, aad string) []byte {
	return append([]byte{version}, aad...)
}

// sealSecret turns a secret into what its column stores: NULL for the
// empty secret, sealed under the store's key, or (a sandbox state without
// a key only) marked plaintext. Without a key it refuses with
// ErrNoStateKey rather than write a secret in the clear.
func (s *Store) sealSecret(v secret.Value, aad string) (any, error) {
	if v.IsZero() {
		return nil, nil
	}
	if s.cipher != nil {
		b, err := s.cipher.SealIn(s.scope, []byte(v.Reveal()), aad)
		if err != nil {
			return nil, fmt.Errorf("store secret %s: %w", aad, err)
		}
		return b, nil
	}
	if !s.allowPlaintextSecrets {
		return nil, fmt.Errorf("store secret %s: %w", aad, ErrNoStateKey)
	}
	return append([]byte{versionPlaintext}, v.Reveal()...), nil
}

// openSecret reads back what sealSecret stored. A plaintext value is read
// only by a state opened with AllowPlaintextSecrets; a keyed state refuses
// it with ErrPlaintextSecret instead of taking it for ciphertext.
func (s *Store) openSecret(b []byte, aad string) (secret.Value, error) {
	if len(b) == 0 {
		return secret.Value{}, nil
	}
	if b[0] == versionPlaintext {
		if !s.allowPlaintextSecrets {
			return secret.Value{}, fmt.Errorf("read secret %s: %w", aad, ErrPlaintextSecret)
		}
		return secret.New(string(b[1:])), nil
	}
	if s.cipher == nil {
		return secret.Value{}, fmt.Errorf("read secret %s: %w", aad, ErrNoStateKey)
	}
	p, err := s.cipher.OpenIn(s.scope, b, aad)
	if err != nil {
		return secret.Value{}, err
	}
	return secret.New(string(p)), nil
}
