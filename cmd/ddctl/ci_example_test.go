package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
)

// The CI example: a GitHub Actions workflow and the configuration it plans
// and applies (examples/ci/README.md).
const (
	ciExampleDir = "../../examples/ci"
	ciWorkflow   = "ddctl.yml" // in ciExampleDir
)

// TestCIWorkflowCommands checks every ddctl command of the workflow's run:
// steps against the CLI itself: the command exists, and each flag is one
// that command defines (as its -h lists them). It also checks what the
// example's README promises: a plan is either for review (-review, saved
// nowhere; one as markdown for the pull request, one as the JSON the merge
// expects) or the merge's (-expect that JSON, -out the file apply is
// given); the state key reaches no job that plans for review; no secret
// is expanded inside a script (secrets reach ddctl only through step
// env:); and every job that runs ddctl shares one concurrency group.
func TestCIWorkflowCommands(t *testing.T) {
	wf := readCIWorkflow(t)

	var plans, applies []ddctlCommand
	for _, c := range wf.commands {
		switch c.sub {
		case "plan":
			plans = append(plans, c)
		case "apply":
			applies = append(applies, c)
		}
	}
	if len(plans) == 0 || len(applies) == 0 {
		t.Fatalf("found %d plan and %d apply commands in %s, want at least one of each", len(plans), len(applies), ciWorkflow)
	}
	var outs, reviewedJSON []string
	reviewJobs := map[string]bool{}
	markdown := false
	for _, p := range plans {
		out, saved := p.flags["out"]
		expect, expects := p.flags["expect"]
		switch {
		case p.flags["review"] == "true" && !saved && !expects:
			reviewJobs[p.job] = true
			markdown = markdown || p.flags["format"] == "markdown"
			if p.flags["json"] == "true" {
				reviewedJSON = append(reviewedJSON, stdoutFile(p.text))
			}
		case p.flags["review"] != "true" && saved && expects:
			if !slices.Contains(reviewedJSON, expect) {
				t.Errorf("line %d: -expect %q is not the JSON a review plan before it wrote (%q): %s", p.line, expect, reviewedJSON, p.text)
			}
			outs = append(outs, out)
		default:
			t.Errorf("line %d: a plan is either for review (-review, saved nowhere) or the merge's (-expect the reviewed JSON, -out what apply is given): %s", p.line, p.text)
		}
	}
	if !markdown {
		t.Error("no review plan prints markdown for the pull request (-format=markdown)")
	}
	for job := range keyedJobs(t) {
		if reviewJobs[job] {
			t.Errorf("job %s plans for review and is given DDCTL_STATE_KEY: a job that runs unreviewed code must hold no customer secret", job)
		}
	}
	for _, a := range applies {
		if len(a.args) != 1 || !slices.Contains(outs, a.args[0]) {
			t.Errorf("line %d: apply must be given the saved plan (one of %q), got %q: %s", a.line, outs, a.args, a.text)
		}
	}

	for _, r := range wf.runs {
		if secretExpr.MatchString(r.script) {
			t.Errorf("line %d: a script expands a secret; pass it through the step's env: instead", r.line)
		}
	}
	groups := map[string]bool{}
	for _, c := range wf.commands {
		g := wf.groups[c.job]
		if g == "" {
			t.Errorf("job %s runs ddctl %s but has no concurrency group", c.job, c.sub)
		}
		groups[g] = true
	}
	if len(groups) > 1 {
		t.Errorf("the jobs that run ddctl use several concurrency groups %v; the state needs one", groups)
	}
}

// TestCIWorkflowFlow runs the workflow's own ddctl command lines, in
// order, against a sandbox: the plan prints markdown and saves the plan
// file, apply makes exactly that plan, and the same plan given again is
// refused as stale with the message the workflow's apply step looks for.
// The example's doku.hcl (production DOKU) is replaced by the sandbox's.
func TestCIWorkflowFlow(t *testing.T) {
	wf := readCIWorkflow(t)
	if t.Failed() {
		t.FailNow()
	}
	sb := sandboxtest.New(t)

	work := t.TempDir()
	cfgDir := filepath.Join(work, "config")
	copyExample(t, ciExampleDir, cfgDir)
	if err := os.Remove(filepath.Join(cfgDir, "doku.hcl")); err != nil {
		t.Fatal(err)
	}
	sb.WriteDOKUBlock(t, filepath.Join(cfgDir, "doku.hcl"))
	payers := seedCIPayments(t, sb, cfgDir)

	runnerTemp := filepath.Join(work, "runner-temp")
	if err := os.MkdirAll(filepath.Join(runnerTemp, "ddctl-plan"), 0o755); err != nil { // the plan step's mkdir -p
		t.Fatal(err)
	}
	stateDir := filepath.Join(work, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DDCTL_VAR_state_file", filepath.Join(stateDir, "ddctl.db"))
	const stateKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	t.Setenv("DDCTL_STATE_KEY", stateKey) // restored after the test; set per job below
	shellVars := map[string]string{"DDCTL_DIR": cfgDir, "RUNNER_TEMP": runnerTemp}
	keyed := keyedJobs(t)
	if !keyed["apply"] || keyed["plan"] {
		t.Fatalf("jobs given DDCTL_STATE_KEY: %v; want the apply job's alone", keyed)
	}
	t.Chdir(work) // run's -chdir moves the process; this puts it back
	adoptCIPayers(t, sb, cfgDir, payers)
	t.Chdir(work)

	exec := func(c ddctlCommand) (code int, stdout, stderr string) {
		args := make([]string, len(c.words))
		for i, w := range c.words {
			args[i] = os.Expand(w, func(name string) string {
				v, ok := shellVars[name]
				if !ok {
					t.Fatalf("line %d: $%s: the test does not know this variable; add it to shellVars", c.line, name)
				}
				return v
			})
		}
		var out, errb bytes.Buffer
		code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}

	applied := 0
	var lastApply ddctlCommand
	for _, c := range wf.commands {
		// The state key only where the workflow gives it.
		if keyed[c.job] {
			os.Setenv("DDCTL_STATE_KEY", stateKey)
		} else {
			os.Unsetenv("DDCTL_STATE_KEY")
		}
		code, stdout, stderr := exec(c)
		if f := stdoutFile(c.text); f != "" {
			path := os.Expand(f, func(name string) string { return shellVars[name] })
			if err := os.WriteFile(path, []byte(stdout), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		switch c.sub {
		case "plan":
			want := exitOK
			if c.flags["detailed-exitcode"] == "true" {
				want = exitChanges
			}
			if code != want {
				t.Fatalf("line %d: %s: exit %d, want %d (refunds to make)\n%s%s", c.line, c.text, code, want, stdout, stderr)
			}
			if !strings.Contains(stdout, "INV-1001") {
				t.Fatalf("line %d: the plan does not show the refund of INV-1001:\n%s", c.line, stdout)
			}
		case "apply":
			if code != exitOK || !strings.Contains(stdout, "Apply complete!") {
				t.Fatalf("line %d: %s: exit %d\n%s%s", c.line, c.text, code, stdout, stderr)
			}
			applied++
			lastApply = c
		default:
			t.Fatalf("line %d: the test does not know how to run ddctl %s; teach it", c.line, c.sub)
		}
	}
	if applied == 0 {
		t.Fatal("the workflow applies nothing")
	}
	code, stdout, stderr := exec(lastApply)
	if code != exitError || !strings.Contains(stderr, "saved plan is stale") {
		t.Fatalf("applying the same plan again: exit %d, want %d with %q, which the workflow looks for\n%s%s",
			code, exitError, "saved plan is stale", stdout, stderr)
	}
}

// stdoutFile is the file a shell command line sends its standard output
// to (>FILE), as written, or "".
func stdoutFile(text string) string {
	m := stdoutRedirect.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

var stdoutRedirect = regexp.MustCompile(`(?:^|\s)>>?\s*"?([^"\s]+)"?`)

// keyedJobs are the workflow's jobs that give DDCTL_STATE_KEY to a step.
func keyedJobs(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ciExampleDir, ciWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	out, job := map[string]bool{}, ""
	for _, line := range strings.Split(string(b), "\n") {
		if m := jobKey.FindStringSubmatch(line); m != nil {
			job = m[1]
		}
		if strings.Contains(line, "DDCTL_STATE_KEY:") && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out[job] = true
		}
	}
	return out
}

// readCIWorkflow reads the example's workflow and checks each of its ddctl
// commands against the CLI (checkCommand).
func readCIWorkflow(t *testing.T) workflow {
	t.Helper()
	wf := readWorkflow(t, filepath.Join(ciExampleDir, ciWorkflow))
	cli := readCLI(t)
	for i := range wf.commands {
		checkCommand(t, cli, &wf.commands[i])
	}
	return wf
}

// seedCIPayments creates the payments the example refunds, each by its
// payer's phone (customers.csv): each CSV row's payment for its amount
// (refunds are full-only), and every literal payment = "..." of
// refunds.hcl, with the binding named after it, for any amount (those
// refunds are full). It returns the payers by binding address.
func seedCIPayments(t *testing.T, sb *sandboxtest.Env, dir string) map[string]ciPayer {
	t.Helper()
	phones := map[string]string{}
	for _, r := range readCSV(t, filepath.Join(dir, "customers.csv")) {
		phones[r["customer_id"]] = r["phone"]
	}
	payers := map[string]ciPayer{}
	pay := func(ref, customer, amount string) {
		a, err := money.Parse(amount)
		if err != nil {
			t.Fatal(err)
		}
		phone, ok := phones[customer]
		if !ok {
			t.Fatalf("payment %s: customer %q is not in customers.csv", ref, customer)
		}
		raw, _ := json.Marshal(a.Value())
		if _, err := sb.Server.CreatePayment(context.Background(), sandbox.NewPayment{PartnerReferenceNo: ref, Amount: raw, Phone: phone}); err != nil {
			t.Fatal(err)
		}
		payers[fmt.Sprintf("binding.customer[%q]", customer)] = ciPayer{customer, phone}
	}
	for _, r := range readCSV(t, filepath.Join(dir, "refunds.csv")) {
		pay(r["payment_ref"], r["customer_id"], r["amount"])
	}
	hcl, err := os.ReadFile(filepath.Join(dir, "refunds.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*payment\s*=\s*"([^"]+)".*\n\s*binding\s*=\s*binding\.customer\["([^"]+)"\]`).FindAllStringSubmatch(string(hcl), -1) {
		pay(m[1], m[2], "100000")
	}
	if len(payers) == 0 {
		t.Fatal("refunds.hcl and refunds.csv name no payer")
	}
	return payers
}

// ciPayer is a customer who paid, bound outside ddctl.
type ciPayer struct{ customerID, phone string }

// adoptCIPayers binds each payer's account in the sandbox as the shop's
// own systems would have, and adopts it with ddctl import, as an operator
// does once on the runner (with the state key set).
func adoptCIPayers(t *testing.T, sb *sandboxtest.Env, cfgDir string, payers map[string]ciPayer) {
	t.Helper()
	for addr, p := range payers {
		code, err := sb.Server.BindOutside(context.Background(), p.phone, p.customerID)
		if err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if rc := run(context.Background(), []string{"-chdir=" + cfgDir, "import", addr, p.customerID}, strings.NewReader(code+"\n"), &out, &errb); rc != exitOK {
			t.Fatalf("import %s: exit %d\n%s%s", addr, rc, &out, &errb)
		}
	}
}

// readCSV reads a CSV file with a header row into one map per row.
func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("%s: %d rows, %v", path, len(rows), err)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, name := range rows[0] {
			m[name] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// workflow is what the tests need of a workflow file.
type workflow struct {
	runs     []runScript
	commands []ddctlCommand
	groups   map[string]string // job → its concurrency group
	vars     map[string]string // DDCTL_VAR_ name → value, wherever set in env:
}

// runScript is the text of one run: step.
type runScript struct {
	job    string
	line   int // of the run: key, 1-based
	script string
}

// ddctlCommand is one ddctl command line of a run: step.
type ddctlCommand struct {
	job   string
	line  int      // of the run: key
	text  string   // as written, continuation lines joined
	words []string // after "ddctl", up to a redirection or an operator

	// Filled by checkCommand.
	sub   string            // the command (plan, apply, ...)
	flags map[string]string // the command's flags as given (bool flags: "true")
	args  []string          // its arguments after the flags
}

var (
	runKey  = regexp.MustCompile(`^(\s*)(- )?run:\s*(.*)$`)
	jobKey  = regexp.MustCompile(`^  ([A-Za-z_][\w-]*):\s*$`)
	groupKV = regexp.MustCompile(`^\s+group:\s*(\S+)`)
	varKV   = regexp.MustCompile(`^\s*(?:- )?DDCTL_VAR_(\w+):\s*(.*)$`)

	// secretExpr is a secret expanded by the runner into a script, where
	// it could be echoed or break the script's quoting.
	secretExpr = regexp.MustCompile(`\$\{\{\s*secrets\.`)
)

// readWorkflow scans a workflow file line by line (no YAML library: the
// module has none): the jobs under jobs:, their run: scripts (plain or
// block scalars), concurrency groups and DDCTL_VAR_ env entries.
func readWorkflow(t *testing.T, path string) workflow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	w := workflow{groups: map[string]string{}, vars: map[string]string{}}
	inJobs, job := false, ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if m := varKV.FindStringSubmatch(line); m != nil {
			w.vars[m[1]] = unquoteYAML(m[2])
		}
		if !strings.HasPrefix(line, " ") {
			inJobs, job = trimmed == "jobs:", ""
			continue
		}
		if m := jobKey.FindStringSubmatch(line); inJobs && m != nil {
			job = m[1]
			continue
		}
		if m := groupKV.FindStringSubmatch(line); m != nil && job != "" {
			w.groups[job] = m[1]
		}
		m := runKey.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := runScript{job: job, line: i + 1}
		if rest := strings.TrimSpace(m[3]); rest != "" && !strings.ContainsAny(rest[:1], "|>") {
			r.script = unquoteYAML(rest)
		} else { // a block scalar: the lines indented more than the key
			keyCol := len(m[1]) + len(m[2])
			var body []string
			for i+1 < len(lines) {
				next := lines[i+1]
				if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= keyCol {
					break
				}
				body = append(body, next)
				i++
			}
			r.script = dedent(body)
		}
		w.runs = append(w.runs, r)
		w.commands = append(w.commands, ddctlCommands(r)...)
	}
	return w
}

func unquoteYAML(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

func dedent(lines []string) string {
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); indent < 0 || n < indent {
			indent = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if indent >= 0 && len(l) >= indent {
			l = l[indent:]
		}
		b.WriteString(strings.TrimRight(l, " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// commandStarts are the words after which a word begins a new command.
var commandStarts = []string{";", "|", "&", "!", "if", "then", "else", "do", "while", "until", "time"}

// ddctlCommands finds the ddctl commands of a script: a word "ddctl" that
// begins a command, with its words up to the first operator.
func ddctlCommands(r runScript) []ddctlCommand {
	var cmds []ddctlCommand
	for _, line := range strings.Split(strings.ReplaceAll(r.script, "\\\n", " "), "\n") {
		words := shellWords(line)
		for i, w := range words {
			if w != "ddctl" || (i > 0 && !slices.Contains(commandStarts, words[i-1])) {
				continue
			}
			end := i + 1
			for end < len(words) && !strings.ContainsAny(words[end], ";|&<>") {
				end++
			}
			cmds = append(cmds, ddctlCommand{job: r.job, line: r.line, text: strings.Join(strings.Fields(line), " "), words: words[i+1 : end]})
		}
	}
	return cmds
}

// shellWords splits one line of shell into words as a POSIX shell would,
// near enough for command lines: quotes and backslashes are removed,
// variables are left unexpanded, a comment ends the line, and each of
// ; | & < > is a word of its own (a file descriptor number before a
// redirection is dropped).
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	var quote rune
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\\' && quote != '\'' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			flush()
		case r == '#' && !inWord:
			flush()
			return words
		case strings.ContainsRune(";|&<>", r):
			if (r == '<' || r == '>') && inWord && strings.Trim(cur.String(), "0123456789") == "" {
				cur.Reset()
				inWord = false
			}
			flush()
			words = append(words, string(r))
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	flush()
	return words
}

// cli is what ddctl's own help says about its commands and flags.
type cli struct {
	globals  map[string]bool            // global flag → takes a value
	commands map[string]bool            // command names
	flags    map[string]map[string]bool // command → flag → takes a value
}

var (
	globalFlag = regexp.MustCompile(`\[-([a-z][\w-]*)(=[^\]]*)?\]`)
	commandRow = regexp.MustCompile(`(?m)^  ([a-z][\w-]*)\s{2,}\S`)
)

// readCLI runs "ddctl -h" for the global flags and the commands.
func readCLI(t *testing.T) cli {
	t.Helper()
	usage := ddctlHelp(t, "-h")
	c := cli{globals: map[string]bool{}, commands: map[string]bool{}, flags: map[string]map[string]bool{}}
	for _, m := range globalFlag.FindAllStringSubmatch(usage, -1) {
		c.globals[m[1]] = m[2] != ""
	}
	for _, m := range commandRow.FindAllStringSubmatch(usage, -1) {
		c.commands[m[1]] = true
	}
	if !c.globals["chdir"] || !c.commands["plan"] || !c.commands["apply"] {
		t.Fatalf("cannot read the global flags and commands from ddctl -h:\n%s", usage)
	}
	return c
}

// commandFlags runs "ddctl COMMAND -h" and reads the flag list it prints
// (flag.PrintDefaults: "  -name VALUE" or "  -name" for a bool).
func (c cli) commandFlags(t *testing.T, command string) map[string]bool {
	t.Helper()
	if f, ok := c.flags[command]; ok {
		return f
	}
	f := map[string]bool{}
	for _, line := range strings.Split(ddctlHelp(t, command, "-h"), "\n") {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		head, _, _ := strings.Cut(line, "\t")
		fields := strings.Fields(head)
		f[strings.TrimPrefix(fields[0], "-")] = len(fields) > 1
	}
	c.flags[command] = f
	return f
}

func ddctlHelp(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("ddctl %s: exit %d\n%s%s", strings.Join(args, " "), code, &out, &errb)
	}
	return out.String() + errb.String()
}

// checkCommand parses c.words as the flag package will (flags stop at the
// first argument) and reports every flag that the command does not
// define, or that lacks its value.
func checkCommand(t *testing.T, c cli, cmd *ddctlCommand) {
	t.Helper()
	words := cmd.words
	for len(words) > 0 && strings.HasPrefix(words[0], "-") {
		name, _, hasValue := strings.Cut(strings.TrimLeft(words[0], "-"), "=")
		takesValue, ok := c.globals[name]
		if !ok {
			t.Errorf("line %d: ddctl has no global flag -%s: %s", cmd.line, name, cmd.text)
		}
		words = words[1:]
		if takesValue && !hasValue && len(words) > 0 {
			words = words[1:]
		}
	}
	if len(words) == 0 || !c.commands[words[0]] {
		t.Errorf("line %d: not a ddctl command: %s", cmd.line, cmd.text)
		return
	}
	cmd.sub, words = words[0], words[1:]
	defined := c.commandFlags(t, cmd.sub)
	cmd.flags = map[string]string{}
	for len(words) > 0 && strings.HasPrefix(words[0], "-") && words[0] != "-" {
		if words[0] == "--" {
			words = words[1:]
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(words[0], "-"), "=")
		words = words[1:]
		takesValue, ok := defined[name]
		switch {
		case !ok:
			t.Errorf("line %d: ddctl %s has no flag -%s (it has %s): %s", cmd.line, cmd.sub, name, flagNames(defined), cmd.text)
		case takesValue && !hasValue:
			if len(words) == 0 {
				t.Errorf("line %d: ddctl %s -%s needs a value: %s", cmd.line, cmd.sub, name, cmd.text)
				break
			}
			value, words = words[0], words[1:]
		case !takesValue && !hasValue:
			value = "true"
		}
		cmd.flags[name] = value
	}
	cmd.args = words
}

func flagNames(m map[string]bool) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, "-"+n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// ownDOKU reports whether an example directory has a doku block of its
// own (ci/ does: it is a production configuration), in which case the
// embedded sandbox's doku block cannot join it.
func ownDOKU(t *testing.T, dir string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?m)^\s*doku\s*\{`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if block.Match(b) {
			return true
		}
	}
	return false
}

// setWorkflowVars sets the DDCTL_VAR_ variables that the example's
// workflow sets, as CI would: a literal value as written, and a
// placeholder for one that comes from a secret or the runner. A variable
// the configuration needs and the workflow does not set then fails
// validation.
func setWorkflowVars(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, ciWorkflow)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s has its own doku block but no %s that says where its variables come from", dir, ciWorkflow)
	}
	vars := readWorkflow(t, path).vars
	if len(vars) == 0 {
		t.Fatalf("%s sets no DDCTL_VAR_ variable", path)
	}
	for name, value := range vars {
		if strings.Contains(value, "$") {
			value = "placeholder-" + name
		}
		t.Setenv("DDCTL_VAR_"+name, value)
	}
}
