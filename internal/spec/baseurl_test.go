package spec

import (
	"fmt"
	"strings"
	"testing"
)

// The DOKU host comes from the reviewed configuration only where it is
// DOKU's own (or, for the sandbox, a simulator on this machine); another
// is the runner's, from DDCTL_DOKU_BASE_URL, https only. Local is true
// only for a sandbox block on a loopback address.
func TestBaseURLPinned(t *testing.T) {
	for _, tc := range []struct {
		env, baseURL, override string
		want                   string // the base URL; "" when Load must fail
		local                  bool
	}{
		{env: "production", want: "https://api.doku.com"},
		{env: "production", baseURL: "https://api.doku.com/", want: "https://api.doku.com"},
		{env: "production", baseURL: "https://api.doku.com.example.net"},
		{env: "production", baseURL: "http://127.0.0.1:9999"},
		{env: "production", override: "https://doku-proxy.internal.example", want: "https://doku-proxy.internal.example"},
		{env: "production", override: "http://doku-proxy.internal.example"},
		{env: "production", override: "http://127.0.0.1:8787"},
		{env: "sandbox", want: "https://api-sandbox.doku.com"},
		{env: "sandbox", baseURL: "http://127.0.0.1:8787", want: "http://127.0.0.1:8787", local: true},
		{env: "sandbox", baseURL: "http://localhost:8787", want: "http://localhost:8787", local: true},
		{env: "sandbox", baseURL: "http://[::1]:8787", want: "http://[::1]:8787", local: true},
		{env: "sandbox", baseURL: "https://sandbox-proxy.example.com"},
		{env: "sandbox", baseURL: "http://10.0.0.5:8787"},
		{env: "sandbox", override: "http://127.0.0.1:9000", want: "http://127.0.0.1:9000", local: true},
		{env: "sandbox", override: "https://sandbox-proxy.example.com", want: "https://sandbox-proxy.example.com"},
	} {
		name := fmt.Sprintf("%s/%s/%s", tc.env, tc.baseURL, tc.override)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			block := fmt.Sprintf("doku {\n  environment = %q\n  client_id = \"BRN-1\"\n  client_secret = \"s\"\n  private_key_file = \"k.pem\"\n", tc.env)
			if tc.baseURL != "" {
				block += fmt.Sprintf("  base_url = %q\n", tc.baseURL)
			}
			writeFiles(t, dir, map[string]string{"doku.hcl": block + "}\n", "main.hcl": "refund \"r\" {\n  payment = \"INV-1\"\n}\n"})
			var env []string
			if tc.override != "" {
				env = []string{BaseURLEnv + "=" + tc.override}
			}
			cfg, files, diags := Load(LoadOptions{Dir: dir, Env: env})
			if tc.want == "" {
				if !diags.HasErrors() {
					t.Fatalf("loaded with base URL %q, want an error", cfg.DOKU.BaseURL)
				}
				if text := renderDiags(t, files, diags); !strings.Contains(text, "base_url not allowed here") && !strings.Contains(text, BaseURLEnv) {
					t.Fatalf("errors do not say why:\n%s", text)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("Load:\n%s", renderDiags(t, files, diags))
			}
			if cfg.DOKU.BaseURL != tc.want || cfg.DOKU.Local() != tc.local {
				t.Fatalf("base URL %q local %v, want %q %v", cfg.DOKU.BaseURL, cfg.DOKU.Local(), tc.want, tc.local)
			}
		})
	}
}
