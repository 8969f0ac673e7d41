package spec

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

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

// Refund policies, the values of doku.refund_policy.
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
	// DefaultSettleTime is doku.settle_time's default: DOKU asks that an
	// outcome not be inquired about sooner than 60 s after its request.
	DefaultSettleTime = 60 * time.Second
	// DefaultRetryBudget and DefaultRetryWaitMax are doku.retry_budget's
	// and doku.retry_wait_max's defaults (those of the DOKU client).
	DefaultRetryBudget  = 30 * time.Second
	DefaultRetryWaitMax = 5 * time.Second
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
	// SettleTime is how long after a request whose outcome is unknown a
	// status inquiry that finds no record may conclude that DOKU never
	// got it (so that it is sent again); before, the outcome stays open.
	// Default DefaultSettleTime; 0 concludes at once.
	SettleTime time.Duration
	// RetryBudget is how long one run (an apply, a daemon cycle) may wait
	// in all for "retry later" answers (429) to send them again within
	// the run; default DefaultRetryBudget; 0 sends them again only in the
	// next run. RetryWaitMax is the longest single wait; default
	// DefaultRetryWaitMax.
	RetryBudget  time.Duration
	RetryWaitMax time.Duration
	DeclRange    hcl.Range // the block's header
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
		{Name: "settle_time"},
		{Name: "retry_budget"},
		{Name: "retry_wait_max"},
	},
}

// decodeDOKU decodes the doku block.
func (l *loader) decodeDOKU(b *hcl.Block, ctx *hcl.EvalContext) DOKU {
	d := DOKU{
		RequestsPerSecond: defaultRequestsPerSecond,
		RefundPolicy:      refundPolicyFull,
		IPAddress:         defaultIPAddress,
		SettleTime:        DefaultSettleTime,
		RetryBudget:       DefaultRetryBudget,
		RetryWaitMax:      DefaultRetryWaitMax,
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
		baseURL, ok := checkBaseURL(u)
		switch {
		case !ok:
			l.errorf(attrs["base_url"].Expr.Range().Ptr(), "Invalid base_url",
				"base_url must be an absolute http or https URL with a host and no user, query or fragment, such as \"http://127.0.0.1:8787\"; got %q.", u)
		case !PinnedBaseURL(d.Environment, baseURL):
			l.errorf(attrs["base_url"].Expr.Range().Ptr(), "base_url not allowed here",
				"%s. A configuration is reviewed after a pull request's plan runs, so it must not be able to send credentials and customers' authCodes to another host: a proxy or a regional endpoint is set on the runner, with %s, never in the configuration.",
				pinnedRule(d.Environment, baseURL), BaseURLEnv)
		default:
			d.BaseURL = baseURL
		}
	} else if d.Environment == environmentProduction {
		d.BaseURL = defaultProductionBaseURL
	} else {
		d.BaseURL = defaultSandboxBaseURL
	}
	if l.baseURLOverride != "" && d.Environment != "" {
		if u, err := CheckBaseURLOverride(d.Environment, l.baseURLOverride); err != nil {
			l.errorf(b.DefRange.Ptr(), "Invalid "+BaseURLEnv, "%s. It is the runner's DOKU host, set outside the configuration.", err)
		} else {
			d.BaseURL = u
		}
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
	durations := []struct {
		name    string
		to      *time.Duration
		zeroOK  bool
		meaning string
	}{
		{"settle_time", &d.SettleTime, true, "how long after a request whose outcome is unknown ddctl waits before it concludes, from a status inquiry that finds nothing, that DOKU never got it"},
		{"retry_budget", &d.RetryBudget, true, "how long one run may wait in all for DOKU's \"retry later\" answers before it leaves them to the next run"},
		{"retry_wait_max", &d.RetryWaitMax, false, "the longest single wait for a \"retry later\" answer"},
	}
	for _, f := range durations {
		s, ok := l.str(sc, attrs[f.name], false)
		if !ok {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 || v == 0 && !f.zeroOK {
			least := "0s or more"
			if !f.zeroOK {
				least = "more than 0s"
			}
			l.errorf(attrs[f.name].Expr.Range().Ptr(), "Invalid "+f.name,
				"%s is %s; it must be a duration such as \"60s\" or \"2m\", %s; got %q.", f.name, f.meaning, least, s)
			continue
		}
		*f.to = v
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

// BaseURLEnv names the environment variable that sets another DOKU host (a
// proxy, a regional endpoint) from the runner, outside the reviewed
// configuration: CheckBaseURLOverride says what it may hold.
const BaseURLEnv = "DDCTL_DOKU_BASE_URL"

// PinnedBaseURL reports whether a doku block of environment may name
// baseURL itself: production only DOKU's production host, sandbox DOKU's
// sandbox host or a simulator on this machine (a loopback address).
func PinnedBaseURL(environment, baseURL string) bool {
	switch environment {
	case environmentProduction:
		return baseURL == defaultProductionBaseURL
	case environmentSandbox:
		return baseURL == defaultSandboxBaseURL || IsLoopback(baseURL)
	}
	return false
}

func pinnedRule(environment, baseURL string) string {
	if environment == environmentProduction {
		return fmt.Sprintf("A production doku block calls only %s (got %q)", defaultProductionBaseURL, baseURL)
	}
	return fmt.Sprintf("A sandbox doku block calls only %s or a simulator on this machine (127.0.0.1, [::1], localhost); got %q", defaultSandboxBaseURL, baseURL)
}

// CheckBaseURLOverride checks a base URL set with BaseURLEnv: https always,
// except a simulator on this machine for the sandbox environment. It
// returns the URL without a trailing slash.
func CheckBaseURLOverride(environment, u string) (string, error) {
	baseURL, ok := checkBaseURL(u)
	switch {
	case !ok:
		return "", fmt.Errorf("%s: want an absolute https URL with a host and no user, query or fragment; got %q", BaseURLEnv, u)
	case environment == environmentSandbox && IsLoopback(baseURL):
		return baseURL, nil
	case !strings.HasPrefix(baseURL, "https://"):
		return "", fmt.Errorf("%s: %q is not https: credentials and customers' authCodes travel over it", BaseURLEnv, u)
	}
	return baseURL, nil
}

// IsLoopback reports whether baseURL's host is this machine: 127.0.0.0/8,
// ::1 or localhost.
func IsLoopback(baseURL string) bool {
	parsed, err := url.Parse(baseURL)
	if err != nil {
		return false
	}
	host := parsed.Hostname()
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Local reports whether the doku block is a simulator on this machine
// (environment sandbox, a loopback base URL): only then may secrets be
// kept unencrypted and saved plans go unsigned.
func (d DOKU) Local() bool {
	return d.Environment == environmentSandbox && IsLoopback(d.BaseURL)
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
