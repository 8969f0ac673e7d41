package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/secret"
)

// A sandbox directory holds what a sandbox process keeps between runs: the
// merchant's and DOKU's key pairs and the credentials (made once), the
// ledger, and what a merchant needs to connect (credentials.json and a
// ready doku block in doku.hcl, rewritten at each start with the address).
// An optional seed.json lists payments to create at start if missing.
const (
	merchantKeyFile = "merchant.pem"
	merchantPubFile = "merchant.pub.pem"
	dokuKeyFile     = "doku.pem"
	dokuPubFile     = "doku.pub.pem"
	clientFile      = "client.json"
	ledgerFile      = "ledger.db"
	CredentialsFile = "credentials.json"
	DOKUFile        = "doku.hcl"
	SeedFile        = "seed.json"
)

// Credentials is the content of credentials.json: how a merchant connects
// to this sandbox.
type Credentials struct {
	BaseURL                string `json:"base_url"`
	ClientID               string `json:"client_id"`
	ClientSecret           string `json:"client_secret"`
	MerchantPrivateKeyFile string `json:"merchant_private_key_file"`
	DOKUPublicKeyFile      string `json:"doku_public_key_file"`
}

type clientIdentity struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// PrepareDir makes dir if needed, generates the key pairs and credentials
// the first time, and returns a Config whose ledger lives in dir.
func PrepareDir(dir string) (Config, error) {
	var cfg Config
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cfg, fmt.Errorf("sandbox directory: %w", err)
	}
	merchant, err := loadOrCreateKey(filepath.Join(dir, merchantKeyFile), filepath.Join(dir, merchantPubFile))
	if err != nil {
		return cfg, err
	}
	dokuKey, err := loadOrCreateKey(filepath.Join(dir, dokuKeyFile), filepath.Join(dir, dokuPubFile))
	if err != nil {
		return cfg, err
	}
	id, err := loadOrCreateIdentity(filepath.Join(dir, clientFile))
	if err != nil {
		return cfg, err
	}
	return Config{
		ClientID:          id.ClientID,
		ClientSecret:      secret.New(id.ClientSecret),
		MerchantPublicKey: &merchant.PublicKey,
		DOKUPrivateKey:    dokuKey,
		LedgerPath:        filepath.Join(dir, ledgerFile),
	}, nil
}

func loadOrCreateKey(privPath, pubPath string) (*rsa.PrivateKey, error) {
	if k, err := doku.LoadPrivateKey(privPath); err == nil {
		return k, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	priv, err := doku.EncodePrivateKey(k)
	if err != nil {
		return nil, err
	}
	pub, err := doku.EncodePublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		return nil, err
	}
	// The private key is written last: its presence means the pair is whole.
	if err := writeFileAtomic(privPath, priv, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func loadOrCreateIdentity(path string) (clientIdentity, error) {
	var id clientIdentity
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &id); err != nil || id.ClientID == "" || id.ClientSecret == "" {
			return id, fmt.Errorf("sandbox %s is damaged; remove the sandbox directory to start afresh", path)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	buf := make([]byte, 24)
	rand.Read(buf)
	id = clientIdentity{
		ClientID:     "BRN-SANDBOX-" + hex.EncodeToString(buf[:4]),
		ClientSecret: "sk-sandbox-" + hex.EncodeToString(buf[4:]),
	}
	b, _ = json.MarshalIndent(id, "", "  ")
	return id, writeFileAtomic(path, b, 0o600)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteClientFiles writes credentials.json and doku.hcl in dir for a
// sandbox serving at baseURL. doku.hcl names its key files relative to
// itself, so it can be loaded from dir as part of a configuration.
func WriteClientFiles(dir, baseURL string, cfg Config) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cred := Credentials{
		BaseURL:                baseURL,
		ClientID:               cfg.ClientID,
		ClientSecret:           cfg.ClientSecret.Reveal(),
		MerchantPrivateKeyFile: filepath.Join(abs, merchantKeyFile),
		DOKUPublicKeyFile:      filepath.Join(abs, dokuPubFile),
	}
	b, _ := json.MarshalIndent(cred, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, CredentialsFile), append(b, '\n'), 0o600); err != nil {
		return err
	}
	hcl := fmt.Sprintf(`# Written by ddctl sandbox for the sandbox at %s.
# Key file paths are relative to this file.
doku {
  environment          = "sandbox"
  base_url             = %s
  client_id            = %s
  client_secret        = %s
  private_key_file     = %q
  doku_public_key_file = %q
}
`, baseURL, strconv.Quote(baseURL), strconv.Quote(cfg.ClientID), strconv.Quote(cfg.ClientSecret.Reveal()),
		merchantKeyFile, dokuPubFile)
	return writeFileAtomic(filepath.Join(dir, DOKUFile), []byte(hcl), 0o600)
}

// Seed is the content of seed.json: Allo accounts (made if missing; an
// existing one keeps its balance) and paid payments (made if missing).
type Seed struct {
	Customers []NewCustomer `json:"customers"`
	Payments  []NewPayment  `json:"payments"`
	// AutoApprove, a Go duration such as "1s", approves every binding and
	// payment this long after it was asked for, as Config.AutoApprove;
	// a -auto-approve flag given to ddctl sandbox wins.
	AutoApprove string `json:"auto_approve,omitempty"`
}

// ReadSeed reads the seed.json at path; a missing file is an empty seed.
func ReadSeed(path string) (Seed, error) {
	var seed Seed
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return seed, nil
	}
	if err != nil {
		return seed, err
	}
	if err := json.Unmarshal(b, &seed); err != nil {
		return seed, fmt.Errorf("%s: %w", path, err)
	}
	if seed.AutoApprove != "" {
		if d, err := time.ParseDuration(seed.AutoApprove); err != nil || d <= 0 {
			return seed, fmt.Errorf("%s: auto_approve %q: want a positive duration such as \"1s\"", path, seed.AutoApprove)
		}
	}
	return seed, nil
}

// AutoApproveDelay is the seed's auto_approve, or 0.
func (s Seed) AutoApproveDelay() time.Duration {
	d, _ := time.ParseDuration(s.AutoApprove)
	return d
}

// SeedFromFile makes the accounts and payments listed in path that the
// ledger does not hold yet, and returns how many payments the seed lists.
// A missing file seeds nothing.
func (s *Server) SeedFromFile(ctx context.Context, path string) (int, error) {
	seed, err := ReadSeed(path)
	if err != nil {
		return 0, err
	}
	for i, c := range seed.Customers {
		if err := s.addCustomer(ctx, c); err != nil {
			return 0, fmt.Errorf("%s: customer %d: %w", path, i+1, err)
		}
	}
	for i, p := range seed.Payments {
		if _, err := s.CreatePayment(ctx, p); err != nil {
			return i, fmt.Errorf("%s: payment %d: %w", path, i+1, err)
		}
	}
	return len(seed.Payments), nil
}
