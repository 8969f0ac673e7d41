package spec

import (
	"math"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/ddctl/ddctl/internal/secret"
)

// DOKU environments, the values of doku.environment.
const (
	environmentSandbox    = "sandbox"
	environmentProduction = "production"
)

// Refund policies, the values of doku.refund_policy (DESIGN.md "Refunds").
const (
	refundPolicyFull    = "full"
	refundPolicyPartial = "partial"
)

// Defaults of the doku block.
const (
	defaultSandboxBaseURL    = "https://api-sandbox.doku.com"
	defaultProductionBaseURL = "https://api.doku.com"
	defaultRequestsPerSecond = 10
	defaultIPAddress         = "10.0.0.100"
)

// DOKU holds the doku block: which DOKU environment to call and with which
// credentials.
type DOKU struct {
	Environment       string       // "sandbox" or "production"
	BaseURL           string       // absolute http(s) URL without a trailing slash; default https://api-sandbox.doku.com or https://api.doku.com by Environment
	ClientID          string       // non-empty
	ClientSecret      secret.Value // non-empty; always sensitive
	PrivateKeyFile    string       // absolute; a relative path is joined with the directory of the file declaring the block
	DOKUPublicKeyFile string       // "" when not given; otherwise as PrivateKeyFile
	RequestsPerSecond float64      // > 0; default 10
	RefundPolicy      string       // "full" (default) or "partial"
	IPAddress         string       // sent as X-IP-ADDRESS: a dotted IPv4 address of 10-15 characters; default "10.0.0.100"
	DeclRange         hcl.Range    // the block's header
}

var dokuSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "environment", Required: true},
		{Name: "base_url"},
		{Name: "client_id", Required: true},
		{Name: "client_secret", Required: true},
		{Name: "private_key_file", Required: true},
		{Name: "doku_public_key_file"},
		{Name: "requests_per_second"},
		{Name: "refund_policy"},
		{Name: "ip_address"},
	},
}

// decodeDOKU decodes the doku block.
func (l *loader) decodeDOKU(b *hcl.Block, ctx *hcl.EvalContext) DOKU {
	d := DOKU{
		RequestsPerSecond: defaultRequestsPerSecond,
		RefundPolicy:      refundPolicyFull,
		IPAddress:         defaultIPAddress,
		DeclRange:         b.DefRange,
	}
	content, diags := b.Body.Content(dokuSchema)
	l.diags = append(l.diags, diags...)
	attrs := content.Attributes
	sc := scope{ctx: ctx}

	if env, ok := l.str(sc, attrs["environment"], true); ok {
		switch env {
		case environmentSandbox, environmentProduction:
			d.Environment = env
		default:
			l.errorf(attrs["environment"].Expr.Range().Ptr(), "Invalid environment",
				"environment is %q, but it must be %q or %q.", env, environmentSandbox, environmentProduction)
		}
	}

	if u, ok := l.str(sc, attrs["base_url"], false); ok {
		if baseURL, ok := checkBaseURL(u); ok {
			d.BaseURL = baseURL
		} else {
			l.errorf(attrs["base_url"].Expr.Range().Ptr(), "Invalid base_url",
				"base_url must be an absolute http or https URL with a host and no user, query or fragment, such as \"http://127.0.0.1:8787\"; got %q.", u)
		}
	} else if d.Environment == environmentProduction {
		d.BaseURL = defaultProductionBaseURL
	} else {
		d.BaseURL = defaultSandboxBaseURL
	}

	if id, ok := l.str(sc, attrs["client_id"], true); ok {
		if id == "" {
			l.errorf(attrs["client_id"].Expr.Range().Ptr(), "Invalid client_id",
				"client_id must not be empty: it is the Client ID from the DOKU Back Office.")
		}
		d.ClientID = id
	}

	if s, ok := l.strValue(sc, attrs["client_secret"], true, true); ok {
		if s == "" {
			l.errorf(attrs["client_secret"].Expr.Range().Ptr(), "Invalid client_secret",
				"client_secret must not be empty: it is the Secret Key from the DOKU Back Office. Give it through a sensitive variable.")
		}
		d.ClientSecret = secret.New(s)
	}

	dir := l.blockDir(b)
	if p, ok := l.strValue(sc, attrs["private_key_file"], true, true); ok {
		d.PrivateKeyFile = l.keyPath(attrs["private_key_file"], dir, p)
	}
	if p, ok := l.strValue(sc, attrs["doku_public_key_file"], false, true); ok {
		d.DOKUPublicKeyFile = l.keyPath(attrs["doku_public_key_file"], dir, p)
	}

	if attr := attrs["requests_per_second"]; attr != nil {
		if v, ok := l.value(sc, attr, false); ok && !v.IsNull() {
			n, err := convert.Convert(v, cty.Number)
			var rps float64
			if err == nil {
				rps, _ = n.AsBigFloat().Float64()
			}
			if err != nil || !(rps > 0) || math.IsInf(rps, 0) {
				l.errorf(attr.Expr.Range().Ptr(), "Invalid requests_per_second",
					"requests_per_second is the most requests per second ddctl sends to DOKU; it must be a number greater than zero, such as 10.")
			} else {
				d.RequestsPerSecond = rps
			}
		}
	}

	if p, ok := l.str(sc, attrs["refund_policy"], false); ok {
		switch p {
		case refundPolicyFull, refundPolicyPartial:
			d.RefundPolicy = p
		default:
			l.errorf(attrs["refund_policy"].Expr.Range().Ptr(), "Invalid refund_policy",
				"refund_policy is %q, but it must be %q (Allo Bank's documented rule: one refund of the paid amount) or %q (where the merchant's contract allows partial refunds).",
				p, refundPolicyFull, refundPolicyPartial)
		}
	}

	if ip, ok := l.str(sc, attrs["ip_address"], false); ok {
		if validIPAddress(ip) {
			d.IPAddress = ip
		} else {
			l.errorf(attrs["ip_address"].Expr.Range().Ptr(), "Invalid ip_address",
				"ip_address is sent to DOKU as X-IP-ADDRESS, which must be a dotted IPv4 address of 10 to 15 characters, such as %q; got %q.", defaultIPAddress, ip)
		}
	}
	return d
}

// blockDir is the absolute directory of the file declaring b: relative key
// paths are relative to it, so that a doku.hcl generated elsewhere and
// passed as an extra file finds its keys.
func (l *loader) blockDir(b *hcl.Block) string {
	dir, err := filepath.Abs(filepath.Dir(b.DefRange.Filename))
	if err != nil {
		return l.dir
	}
	return dir
}

// keyPath checks a key file path and makes it absolute against dir.
func (l *loader) keyPath(attr *hcl.Attribute, dir, p string) string {
	if p == "" {
		l.errorf(attr.Expr.Range().Ptr(), "Invalid "+attr.Name, "%s must be the path of a PEM file, not an empty string.", attr.Name)
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return p
}

// checkBaseURL returns u without a trailing slash if it is an absolute
// http(s) URL with a host and nothing that does not belong in a base URL
// (user information would be a credential printed in plans).
func checkBaseURL(u string) (string, bool) {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" ||
		parsed.User != nil || parsed.RawQuery != "" || parsed.Fragment != "" || parsed.Opaque != "" {
		return "", false
	}
	return strings.TrimRight(u, "/"), true
}

// validIPAddress applies DOKU's X-IP-ADDRESS rule: 10-15 characters, a
// dotted IPv4 address (netip refuses leading zeros).
func validIPAddress(s string) bool {
	if len(s) < 10 || len(s) > 15 {
		return false
	}
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is4()
}
