package spec

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty/function"
)

// LoadOptions says where the configuration is and which variable values to use.
// The zero value loads the current directory with no variable values.
type LoadOptions struct {
	Dir        string   // configuration directory: every *.hcl file in it (not subdirectories), sorted by name
	ExtraFiles []string // more .hcl files to include (e.g. a generated doku.hcl elsewhere); paths as given
	Vars       []string // -var values, each "name=value", in command-line order (later wins)
	Env        []string // environment as os.Environ(); DDCTL_VAR_name=value supplies variable "name"

	// VarFiles are -var-file paths, in command-line order: HCL files of
	// name = value lines. Precedence, lowest first: a variable's default,
	// DDCTL_VAR_name, the var files in order, the -var options in order.
	VarFiles []string

	// WithoutDOKU reads the configuration for what commands that touch
	// only the local state need (the state's path, the time zone, the
	// blocks' addresses): the doku block is neither required nor read, so
	// no credential, key file or DOKU host is needed.
	WithoutDOKU bool
}

// Config is the validated desired state of one configuration directory.
type Config struct {
	Dir      string    // absolute configuration directory
	Settings Settings  // settings block, or the defaults when there is none
	DOKU     DOKU      // the doku block
	Refunds  []Refund  // sorted by Address; nil when there are none
	Bindings []Binding // sorted by Address; nil when there are none
	Unbinds  []Unbind  // sorted by Address; nil when there are none
	Charges  []Charge  // recurring charges, sorted by Address; nil when there are none
	Moved    []Moved   // moved blocks, chains joined, sorted by From; nil when there are none

	// Digest is the hex SHA-256 of the evaluated desired state (settings,
	// the doku environment and refund policy, and every refund's, binding's,
	// unbind's and charge's fields;
	// not how DOKU is reached). It is stable across runs and directories for
	// the same inputs and changes when any desired value changes, so that
	// apply can refuse a plan made from another spec (principle 4, docs/principles.md).
	Digest string
}

// rootSchema lists the top-level blocks. A new block kind gets a line here,
// a schema and a decode function in its own file, and a case in Load.
var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "settings"},
		{Type: "doku"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "binding", LabelNames: []string{"name"}},
		{Type: "unbind", LabelNames: []string{"name"}},
		{Type: "recurring_charge", LabelNames: []string{"name"}},
		{Type: "refund", LabelNames: []string{"name"}},
		{Type: "moved"},
	},
}

// Load parses and validates the configuration described by opts.
//
// files maps each parsed filename (as passed to the parser: the directory
// joined with the file name, or an extra file's path as given) to its
// *hcl.File, for hcl.NewDiagnosticTextWriter; it is non-nil even when diags
// has errors. cfg is nil if and only if diags.HasErrors(). Diagnostics about
// the configuration's content have a Subject; those about the command line
// (-var) or unreadable files may not.
func Load(opts LoadOptions) (cfg *Config, files map[string]*hcl.File, diags hcl.Diagnostics) {
	files = make(map[string]*hcl.File)
	l := &loader{
		bindings: make(map[string]*declared),
		unbinds:  make(map[string]*declared),
		refunds:  make(map[string]*declared),
		charges:  make(map[string]*declared),
		decoded:  make(map[string]Charge),
		ranges:   make(map[string]hcl.Range),
	}
	for _, kv := range opts.Env {
		if v, ok := strings.CutPrefix(kv, BaseURLEnv+"="); ok {
			l.baseURLOverride = v
		}
	}

	dir, err := filepath.Abs(cmp.Or(opts.Dir, "."))
	if err != nil {
		l.errorf(nil, "Invalid configuration directory", "Cannot resolve the configuration directory %q: %s.", opts.Dir, err)
		return nil, files, l.diags
	}
	l.dir = dir
	l.funcs = functions(dir)

	names := l.fileNames(opts)
	var order []string // parsed filenames, in load order
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			l.errorf(nil, "Cannot read configuration file", "Reading %s failed: %s.", name, err)
			continue
		}
		f, parseDiags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		l.diags = append(l.diags, parseDiags...)
		if f == nil {
			continue
		}
		files[name] = f
		order = append(order, name)
	}
	if len(order) == 0 {
		if !l.diags.HasErrors() {
			l.errorf(nil, "No configuration files",
				"The directory %s has no *.hcl files. Write the configuration there (at least a doku block and the refunds), or run ddctl from the directory that holds it.", dir)
		}
		return nil, files, l.diags
	}
	parseFailed := l.diags.HasErrors()

	// Split every file into its top-level blocks, by kind, in load order.
	blocks := make(map[string][]*hcl.Block)
	for _, name := range order {
		content, contentDiags := files[name].Body.Content(rootSchema)
		l.diags = append(l.diags, contentDiags...)
		for _, b := range content.Blocks {
			blocks[b.Type] = append(blocks[b.Type], b)
		}
	}

	vars := l.decodeVariables(blocks["variable"], opts, files)
	ctx := l.evalContext(vars, l.decodeLocals(blocks["locals"], vars))

	settings := l.decodeSettings(blocks["settings"], ctx)

	var doku DOKU
	switch n := len(blocks["doku"]); {
	case opts.WithoutDOKU:
	case n == 0:
		// A doku block lost to a syntax error would only be reported twice.
		if !parseFailed {
			first := order[0]
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing doku block",
				Detail: "The configuration has no doku block, so ddctl does not know which DOKU environment to call or with which credentials. " +
					"Add exactly one, for example:\n\n" +
					"doku {\n" +
					"  environment      = \"sandbox\"\n" +
					"  client_id        = var.client_id\n" +
					"  client_secret    = var.client_secret\n" +
					"  private_key_file = \"keys/merchant.pem\"\n" +
					"}",
				Subject: &hcl.Range{Filename: first, Start: hcl.InitialPos, End: hcl.InitialPos},
			})
		}
	default:
		first := blocks["doku"][0]
		for _, b := range blocks["doku"][1:] {
			l.duplicate(b, first, "doku", "A configuration has exactly one doku block; merge the two.")
		}
		doku = l.decodeDOKU(first, ctx)
	}

	// Bindings and unbinds first: charges refer to bindings, and refunds
	// to charges.
	var bindings []Binding
	seen := make(map[string]*hcl.Block)
	for _, b := range blocks["binding"] {
		if !l.uniqueName(b, seen) {
			continue
		}
		bindings = append(bindings, l.decodeBinding(b, ctx)...)
	}
	var unbinds []Unbind
	seen = make(map[string]*hcl.Block)
	for _, b := range blocks["unbind"] {
		if !l.uniqueName(b, seen) {
			continue
		}
		unbinds = append(unbinds, l.decodeUnbind(b, ctx)...)
	}
	l.checkCustomers(bindings, unbinds)

	var charges []Charge
	seen = make(map[string]*hcl.Block)
	for _, b := range blocks["recurring_charge"] {
		if !l.uniqueName(b, seen) {
			continue
		}
		charges = append(charges, l.decodeCharge(b, ctx, settings.Location)...)
	}

	var refunds []Refund
	seen = make(map[string]*hcl.Block)
	for _, b := range blocks["refund"] {
		if !l.uniqueName(b, seen) {
			continue
		}
		refunds = append(refunds, l.decodeRefund(b, ctx, settings.Location)...)
	}
	slices.SortFunc(refunds, func(a, b Refund) int { return strings.Compare(a.Address, b.Address) })
	slices.SortFunc(bindings, func(a, b Binding) int { return strings.Compare(a.Address, b.Address) })
	slices.SortFunc(unbinds, func(a, b Unbind) int { return strings.Compare(a.Address, b.Address) })
	slices.SortFunc(charges, func(a, b Charge) int { return strings.Compare(a.Address, b.Address) })

	cfg = &Config{Dir: dir, Settings: settings, DOKU: doku, Refunds: refunds, Bindings: bindings, Unbinds: unbinds, Charges: charges}
	cfg.Moved = l.decodeMoved(blocks["moved"], cfg.Addresses())

	diags = dedupe(l.diags)
	if diags.HasErrors() {
		return nil, files, diags
	}
	cfg.Digest = digest(cfg)
	return cfg, files, diags
}

// loader holds what one Load call accumulates; it is not shared between calls.
type loader struct {
	dir string // absolute configuration directory
	// baseURLOverride is BaseURLEnv's value from the environment: the
	// runner's DOKU host, which the configuration cannot set.
	baseURLOverride string
	funcs           map[string]function.Function // bound to dir
	diags           hcl.Diagnostics

	varNames   []string // declared variables, for references and suggestions
	localNames []string // declared locals, likewise

	bindings map[string]*declared // binding blocks by name
	unbinds  map[string]*declared // unbind blocks by name
	refunds  map[string]*declared // refund blocks by name
	charges  map[string]*declared // recurring_charge blocks by name
	decoded  map[string]Charge    // charges decoded without error, by address

	// ranges holds the range of an attribute of a decoded instance, keyed
	// by address + "." + attribute name, for diagnostics of checks that
	// compare instances after decoding them.
	ranges map[string]hcl.Range
}

// declared is what later blocks need to know of a labelled block with
// instances: which instance addresses exist.
type declared struct {
	block   *hcl.Block
	forEach bool            // the block has for_each
	known   bool            // the instance keys are known (for_each evaluated without error)
	keys    map[string]bool // instance keys; "" for a block without for_each
}

// rangeOf returns the recorded range of attribute name of instance addr,
// or fallback when none was recorded.
func (l *loader) rangeOf(addr, name string, fallback hcl.Range) *hcl.Range {
	if r, ok := l.ranges[addr+"."+name]; ok {
		return &r
	}
	return fallback.Ptr()
}

// fileNames lists the files to parse: the directory's *.hcl files sorted by
// name, then the extra files, each file once.
func (l *loader) fileNames(opts LoadOptions) []string {
	var names []string
	entries, err := os.ReadDir(cmp.Or(opts.Dir, "."))
	if err != nil {
		l.errorf(nil, "Cannot read configuration directory", "Listing %s failed: %s.", l.dir, err)
	}
	for _, e := range entries { // ReadDir sorts by name
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".hcl") {
			continue
		}
		names = append(names, filepath.Join(opts.Dir, e.Name()))
	}
	names = append(names, opts.ExtraFiles...)

	seen := make(map[string]bool)
	var unique []string
	for _, name := range names {
		abs, err := filepath.Abs(name)
		if err != nil {
			abs = name
		}
		if seen[abs] {
			continue
		}
		seen[abs] = true
		unique = append(unique, name)
	}
	return unique
}

// errorf appends an error diagnostic. subject may be nil only for problems
// that are not in a file (the command line, an unreadable file).
func (l *loader) errorf(subject *hcl.Range, summary, detailFormat string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detailFormat, args...),
		Subject:  subject,
	})
}

// uniqueName checks a labelled block's name and that no earlier block of the
// same kind has it, recording it in seen. It reports false (with a
// diagnostic) when the block must be skipped.
func (l *loader) uniqueName(b *hcl.Block, seen map[string]*hcl.Block) bool {
	name := b.Labels[0]
	if !validName(name) {
		l.errorf(b.LabelRanges[0].Ptr(), "Invalid "+b.Type+" name",
			"%q is not a valid %s name. A name must start with a letter or underscore and may contain only letters, digits, underscores and dashes.", name, b.Type)
		return false
	}
	if first, ok := seen[name]; ok {
		l.duplicate(b, first, b.Type, "Each "+b.Type+" needs its own name, unique across all files of the configuration; rename one of them.")
		return false
	}
	seen[name] = b
	return true
}

// duplicate reports block b as a second declaration of first.
func (l *loader) duplicate(b, first *hcl.Block, kind, advice string) {
	what := "A " + kind + " block"
	if len(first.Labels) > 0 {
		what = fmt.Sprintf("A %s named %q", kind, first.Labels[0])
	}
	l.errorf(b.DefRange.Ptr(), "Duplicate "+kind+" block", "%s was already declared at %s:%d. %s",
		what, first.DefRange.Filename, first.DefRange.Start.Line, advice)
}

// validName reports whether s is a block name: ASCII letters, digits,
// underscores and dashes, starting with a letter or underscore. Names end up
// in addresses and idempotency keys, hence ASCII only.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && (c == '-' || '0' <= c && c <= '9'):
		default:
			return false
		}
	}
	return true
}

// dedupe drops repeated diagnostics: the same expression evaluated for many
// for_each instances fails the same way for each.
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	type key struct {
		severity        hcl.DiagnosticSeverity
		summary, detail string
		subject         hcl.Range
	}
	seen := make(map[key]bool)
	var out hcl.Diagnostics
	for _, d := range diags {
		k := key{severity: d.Severity, summary: d.Summary, detail: d.Detail}
		if d.Subject != nil {
			k.subject = *d.Subject
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, d)
	}
	return out
}

// Addresses lists the address of every instance the configuration
// declares, refunds, bindings, unbinds and recurring charges, in that order.
func (c *Config) Addresses() []string {
	var out []string
	for _, r := range c.Refunds {
		out = append(out, r.Address)
	}
	for _, b := range c.Bindings {
		out = append(out, b.Address)
	}
	for _, u := range c.Unbinds {
		out = append(out, u.Address)
	}
	for _, ch := range c.Charges {
		out = append(out, ch.Address)
	}
	return out
}

// DidYouMean returns ` Did you mean "NAME"?` for the candidate closest to
// given when it is likely a typo of it, and "" otherwise.
func DidYouMean(given string, candidates []string) string { return suggestion(given, candidates) }
