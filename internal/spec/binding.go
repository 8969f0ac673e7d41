package spec

import (
	"net/mail"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Limits and values of binding fields.
const (
	maxCustomerIDLength   = 64
	maxCustomerNameLength = 70
	maxEmailLength        = 64
	maxDeviceModelLength  = 64

	defaultDeviceModel = "ddctl"
	osTypeAndroid      = "android"
	osTypeIOS          = "ios"
	channelIDApp       = "app"
	channelIDWeb       = "web"
)

// Binding is a customer's Allo account that should be bound: a binding
// block, or one instance of a binding block with for_each. No field may
// come from a sensitive value: they are printed in plans (the phone
// masked) or kept in the state file in clear.
type Binding struct {
	Address      string    // binding.NAME, or with for_each binding.NAME["KEY"] (key quoted with strconv.Quote)
	Name         string    // the block's name
	Key          string    // for_each key; "" without for_each
	CustomerID   string    // the merchant's customer id (custIdMerchant): 1-64 characters, unique across bindings
	Phone        string    // 9-16 digits starting with 62; shown masked
	SuccessURL   string    // absolute http(s) URL the customer's browser returns to after binding
	FailedURL    string    // likewise after a failed binding
	CustomerName string    // at most 70 characters; "" when not given
	Email        string    // at most 64 characters, one address; "" when not given
	DeviceModel  string    // at most 64 characters; default "ddctl"
	OSType       string    // "android" (default) or "ios"
	ChannelID    string    // "app" or "web" (default)
	DeclRange    hcl.Range // the block's header, the same for every instance
}

// Unbind is a binding that must be removed: an unbind block, or one
// instance of one with for_each. Removing a binding is destructive, so it
// happens only because such a block asks for it (principle 1, docs/principles.md).
type Unbind struct {
	Address    string    // unbind.NAME, or with for_each unbind.NAME["KEY"]
	Name       string    // the block's name
	Key        string    // for_each key; "" without for_each
	CustomerID string    // the customer whose binding is removed: 1-64 characters
	Reason     string    // at most 255 characters; may be empty
	DeclRange  hcl.Range // the block's header, the same for every instance
}

var bindingSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"},
		{Name: "customer_id", Required: true},
		{Name: "phone", Required: true},
		{Name: "success_url", Required: true},
		{Name: "failed_url", Required: true},
		{Name: "customer_name"},
		{Name: "email"},
		{Name: "device_model"},
		{Name: "os_type"},
		{Name: "channel_id"},
	},
}

var unbindSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"},
		{Name: "customer_id", Required: true},
		{Name: "reason"},
	},
}

// decodeBinding decodes a binding block into its instances and records
// the block in l.bindings, for the references of recurring charges.
func (l *loader) decodeBinding(b *hcl.Block, ctx *hcl.EvalContext) []Binding {
	content, diags := b.Body.Content(bindingSchema)
	l.diags = append(l.diags, diags...)
	attrs := content.Attributes
	name := b.Labels[0]
	return forInstances(l, b, attrs["for_each"], ctx, l.bindings, func(sc scope, key string) (Binding, bool) {
		bd := Binding{
			Address:     instanceAddress(b.Type, name, key),
			Name:        name,
			Key:         key,
			DeviceModel: defaultDeviceModel,
			OSType:      osTypeAndroid,
			ChannelID:   channelIDWeb,
			DeclRange:   b.DefRange,
		}
		before := len(l.diags.Errs())
		bd.CustomerID = l.customerID(sc, attrs["customer_id"], bd.Address)

		if p, ok := l.str(sc, attrs["phone"], true); ok {
			if validPhone(p) {
				bd.Phone = p
			} else {
				// The number is not quoted: it is personal data.
				l.errorf(attrs["phone"].Expr.Range().Ptr(), "Invalid phone",
					"%sphone must be the customer's Allo phone number as 9 to 16 digits starting with the country code 62, such as \"6281234567890\", with no + sign, spaces or dashes.", sc.prefix())
			}
		}
		bd.SuccessURL = l.redirectURL(sc, attrs["success_url"])
		bd.FailedURL = l.redirectURL(sc, attrs["failed_url"])

		if s, ok := l.str(sc, attrs["customer_name"], false); ok {
			if n := utf8.RuneCountInString(s); n > maxCustomerNameLength {
				l.errorf(attrs["customer_name"].Expr.Range().Ptr(), "Invalid customer_name",
					"%scustomer_name is %d characters long; DOKU takes at most %d.", sc.prefix(), n, maxCustomerNameLength)
			} else {
				bd.CustomerName = s
			}
		}
		if s, ok := l.str(sc, attrs["email"], false); ok && s != "" {
			if addr, err := mail.ParseAddress(s); err != nil || addr.Address != s || len(s) > maxEmailLength {
				l.errorf(attrs["email"].Expr.Range().Ptr(), "Invalid email",
					"%semail must be one plain e-mail address of at most %d characters, such as \"alice@example.com\".", sc.prefix(), maxEmailLength)
			} else {
				bd.Email = s
			}
		}
		if s, ok := l.str(sc, attrs["device_model"], false); ok {
			if n := utf8.RuneCountInString(s); n == 0 || n > maxDeviceModelLength {
				l.errorf(attrs["device_model"].Expr.Range().Ptr(), "Invalid device_model",
					"%sdevice_model must be 1 to %d characters; omit it to send %q.", sc.prefix(), maxDeviceModelLength, defaultDeviceModel)
			} else {
				bd.DeviceModel = s
			}
		}
		if s, ok := l.str(sc, attrs["os_type"], false); ok {
			if s != osTypeAndroid && s != osTypeIOS {
				l.errorf(attrs["os_type"].Expr.Range().Ptr(), "Invalid os_type",
					"%sos_type is %q, but it must be %q or %q.", sc.prefix(), s, osTypeAndroid, osTypeIOS)
			} else {
				bd.OSType = s
			}
		}
		if s, ok := l.str(sc, attrs["channel_id"], false); ok {
			if s != channelIDApp && s != channelIDWeb {
				l.errorf(attrs["channel_id"].Expr.Range().Ptr(), "Invalid channel_id",
					"%schannel_id is %q, but it must be %q or %q.", sc.prefix(), s, channelIDApp, channelIDWeb)
			} else {
				bd.ChannelID = s
			}
		}
		return bd, len(l.diags.Errs()) == before
	})
}

// decodeUnbind decodes an unbind block into its instances and records the
// block in l.unbinds.
func (l *loader) decodeUnbind(b *hcl.Block, ctx *hcl.EvalContext) []Unbind {
	content, diags := b.Body.Content(unbindSchema)
	l.diags = append(l.diags, diags...)
	attrs := content.Attributes
	name := b.Labels[0]
	return forInstances(l, b, attrs["for_each"], ctx, l.unbinds, func(sc scope, key string) (Unbind, bool) {
		u := Unbind{Address: instanceAddress(b.Type, name, key), Name: name, Key: key, DeclRange: b.DefRange}
		before := len(l.diags.Errs())
		u.CustomerID = l.customerID(sc, attrs["customer_id"], u.Address)
		if reason, ok := l.str(sc, attrs["reason"], false); ok {
			if n := utf8.RuneCountInString(reason); n > maxReasonLength {
				l.errorf(attrs["reason"].Expr.Range().Ptr(), "Invalid reason",
					"%sreason is %d characters long; at most %d are kept.", sc.prefix(), n, maxReasonLength)
			} else {
				u.Reason = reason
			}
		}
		return u, len(l.diags.Errs()) == before
	})
}

// customerID evaluates a required customer_id and records its range under
// addr for checkCustomers.
func (l *loader) customerID(sc scope, attr *hcl.Attribute, addr string) string {
	id, ok := l.str(sc, attr, true)
	if !ok {
		return ""
	}
	l.ranges[addr+".customer_id"] = attr.Expr.Range()
	if n := utf8.RuneCountInString(id); n == 0 || n > maxCustomerIDLength {
		l.errorf(attr.Expr.Range().Ptr(), "Invalid customer_id",
			"%scustomer_id is the merchant's own id of the customer and must be 1 to %d characters; it is %d.", sc.prefix(), maxCustomerIDLength, n)
		return ""
	}
	return id
}

// redirectURL evaluates a required redirect URL: absolute http or https,
// with a host and no user information (a credential printed in plans).
func (l *loader) redirectURL(sc scope, attr *hcl.Attribute) string {
	u, ok := l.str(sc, attr, true)
	if !ok {
		return ""
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" || parsed.User != nil || parsed.Opaque != "" {
		l.errorf(attr.Expr.Range().Ptr(), "Invalid "+attr.Name,
			"%s%s must be an absolute http or https URL with a host and no user information, such as \"https://shop.example/bind/ok\"; got %q.", sc.prefix(), attr.Name, u)
		return ""
	}
	return u
}

// validPhone reports whether s is 9-16 ASCII digits starting with 62.
func validPhone(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '6' || s[1] != '2' {
		return false
	}
	return digitsOnly(s)
}

// digitsOnly reports whether s is ASCII digits only.
func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkCustomers checks, after all bindings and unbinds are decoded (in
// source order), that no two bindings bind the same customer, no two
// unbinds remove the same one, and no customer is both bound and unbound:
// the plan could not tell which block wins, and unbinding is destructive,
// so the error is on the unbind.
func (l *loader) checkCustomers(bindings []Binding, unbinds []Unbind) {
	bound := make(map[string]Binding)
	for _, b := range bindings {
		if b.CustomerID == "" {
			continue
		}
		if first, ok := bound[b.CustomerID]; ok {
			l.errorf(l.rangeOf(b.Address, "customer_id", b.DeclRange), "Duplicate customer_id",
				"%s binds customer %q, which %s (%s:%d) already binds. A customer has one Allo binding; remove one of the two.",
				b.Address, b.CustomerID, first.Address, first.DeclRange.Filename, first.DeclRange.Start.Line)
			continue
		}
		bound[b.CustomerID] = b
	}
	unbound := make(map[string]Unbind)
	for _, u := range unbinds {
		if u.CustomerID == "" {
			continue
		}
		if b, ok := bound[u.CustomerID]; ok {
			l.errorf(l.rangeOf(u.Address, "customer_id", u.DeclRange), "Conflicting unbind",
				"%s removes the binding of customer %q, but %s (%s:%d) says that binding should exist. Remove one of the two blocks: the binding to unbind the customer, or the unbind to keep them bound.",
				u.Address, u.CustomerID, b.Address, b.DeclRange.Filename, b.DeclRange.Start.Line)
			continue
		}
		if first, ok := unbound[u.CustomerID]; ok {
			l.errorf(l.rangeOf(u.Address, "customer_id", u.DeclRange), "Duplicate customer_id",
				"%s removes the binding of customer %q, which %s (%s:%d) already removes; remove one of the two.",
				u.Address, u.CustomerID, first.Address, first.DeclRange.Filename, first.DeclRange.Start.Line)
			continue
		}
		unbound[u.CustomerID] = u
	}
}

// instanceAddress is KIND.NAME, or with a for_each key KIND.NAME["KEY"].
func instanceAddress(kind, name, key string) string {
	if key == "" {
		return kind + "." + name
	}
	return kind + "." + name + "[" + strconv.Quote(key) + "]"
}

// forInstances decodes the instances of labelled block b: one, or one per
// key of its for_each attribute (nil when there is none), each with decode.
// When reg is not nil it records in it which instances exist, for the
// references of later blocks, even those whose decoding failed.
func forInstances[T any](l *loader, b *hcl.Block, forEach *hcl.Attribute, ctx *hcl.EvalContext, reg map[string]*declared, decode func(sc scope, key string) (T, bool)) []T {
	name := b.Labels[0]
	d := &declared{block: b, forEach: forEach != nil, keys: make(map[string]bool)}
	if reg != nil {
		reg[name] = d
	}
	if forEach == nil {
		d.known, d.keys[""] = true, true
		if v, ok := decode(scope{ctx: ctx}, ""); ok {
			return []T{v}
		}
		return nil
	}
	instances, ok := l.forEach(forEach, ctx)
	d.known = ok
	var out []T
	for _, inst := range instances {
		d.keys[inst.key] = true
		sc := scope{ctx: eachContext(ctx, inst.key, inst.value), addr: instanceAddress(b.Type, name, inst.key)}
		if v, ok := decode(sc, inst.key); ok {
			out = append(out, v)
		}
	}
	return out
}
