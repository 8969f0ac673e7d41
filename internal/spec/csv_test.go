package spec

import (
	"strings"
	"testing"
)

// What spreadsheets write loads as the CSV it is: a byte order mark, CRLF,
// ";" or tab separators (found in the header, or given), padded header
// names and empty rows at the end. Each gives the same three refunds.
func TestCSVFromSpreadsheets(t *testing.T) {
	const want = `refund.batch["ORD-7"] INV-7 45000.00|refund.batch["ORD-8"] INV-8 19999.99|refund.batch["ORD-9"] INV-9 250000.00`
	for _, tc := range []struct {
		name, csv, call string
	}{
		{"Plain", "order_id,payment_ref,amount\nORD-7,INV-7,45000\nORD-8,INV-8,19999.99\nORD-9,INV-9,250000\n", `csvdecode(file("batch.csv"))`},
		{"BOMAndCRLF", "\uFEFForder_id,payment_ref,amount\r\nORD-7,INV-7,45000\r\nORD-8,INV-8,19999.99\r\nORD-9,INV-9,250000\r\n", `csvdecode(file("batch.csv"))`},
		{"SemicolonFound", "\uFEFForder_id;payment_ref;amount\r\nORD-7;INV-7;45000\r\nORD-8;INV-8;19999.99\r\nORD-9;INV-9;250000\r\n;;\r\n;;\r\n", `csvdecode(file("batch.csv"))`},
		{"SemicolonGiven", "order_id;payment_ref;amount\nORD-7;INV-7;45000\nORD-8;INV-8;19999.99\nORD-9;INV-9;\"250000\"\n", `csvdecode(file("batch.csv"), ";")`},
		{"TabAndPaddedHeader", "order_id\t payment_ref \tamount\nORD-7\tINV-7\t45000\nORD-8\tINV-8\t19999.99\nORD-9\tINV-9\t250000\n", `csvdecode(file("batch.csv"))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"main.hcl":  minimalDOKU,
				"batch.csv": tc.csv,
				"batch.hcl": `refund "batch" {
  for_each = { for r in ` + tc.call + ` : r.order_id => r }
  payment  = each.value.payment_ref
  amount   = each.value.amount
}
`,
			})
			cfg := mustLoad(t, LoadOptions{Dir: dir})
			var got []string
			for _, r := range cfg.Refunds {
				got = append(got, r.Address+" "+r.Payment+" "+r.Amount.Value())
			}
			if g := strings.Join(got, "|"); g != want {
				t.Errorf("refunds %s, want %s", g, want)
			}
		})
	}
}

// A CSV a spreadsheet garbled is an error that says which row and line,
// or which column, and what to do; nothing is planned from it.
func TestCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, csv, call, want string
	}{
		{"RowTooShort", "order_id,payment_ref,amount\nORD-7,INV-7,45000\nORD-8,INV-8\n", `csvdecode(file("batch.csv"))`,
			"row 2 (line 3) has 2 fields, but the header row names 3 columns"},
		{"RowTooLong", "order_id;payment_ref;amount\r\nORD-7;INV-7;45000;x\r\n", `csvdecode(file("batch.csv"))`,
			"row 1 (line 2) has 4 fields, but the header row names 3 columns"},
		{"DuplicateColumn", "order_id,amount,amount\nORD-7,1,2\n", `csvdecode(file("batch.csv"))`,
			`names column "amount" twice (columns 2 and 3)`},
		{"EmptyColumnName", "order_id,,amount\nORD-7,1,2\n", `csvdecode(file("batch.csv"))`,
			"column 2 of the header row has no name"},
		{"Empty", "\uFEFF", `csvdecode(file("batch.csv"))`,
			"the CSV is empty"},
		{"WrongSeparatorGiven", "order_id;payment_ref;amount\nORD-7;INV-7;45000\n", `csvdecode(file("batch.csv"), ",")`,
			`give it, such as csvdecode(file("x.csv"), ";")`},
		{"BadSeparator", "order_id,amount\nORD-7,1\n", `csvdecode(file("batch.csv"), ";;")`,
			"want one character"},
		{"DuplicateKey", "order_id,payment_ref,amount\nORD-7,INV-7,45000\nORD-7,INV-8,19999.99\n", `csvdecode(file("batch.csv"))`,
			`Two elements produced the key "ORD-7"`},
		{"BareQuote", "order_id,payment_ref,amount\nORD-7,IN\"V-7,45000\n", `csvdecode(file("batch.csv"))`,
			"line 2, column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"main.hcl":  minimalDOKU,
				"batch.csv": tc.csv,
				"batch.hcl": `refund "batch" {
  for_each = { for r in ` + tc.call + ` : r.order_id => r }
  payment  = each.value.payment_ref
  amount   = each.value.amount
}
`,
			})
			_, _, diags := Load(LoadOptions{Dir: dir})
			if !diags.HasErrors() {
				t.Fatalf("loaded; want an error saying %q", tc.want)
			}
			if !strings.Contains(diags.Error(), tc.want) {
				t.Fatalf("error %q; want it to say %q", diags.Error(), tc.want)
			}
			if strings.Contains(diags.Error(), "ellipsis") {
				t.Errorf("error %q advises grouping with the ellipsis, which for_each cannot use", diags.Error())
			}
			if !strings.Contains(diags.Error(), "batch.hcl:2") {
				t.Errorf("error %q does not point at the csvdecode call, batch.hcl:2", diags.Error())
			}
		})
	}
}

// A for_each key that reads as a phone number is refused, with a hint to
// key by the customer's id, and the error shows the number masked: a key
// is printed in full wherever its address is.
func TestPhoneLikeKeysRefused(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.hcl":      minimalDOKU,
		"customers.csv": "customer_id,phone\ncust-1,6281311112222\n",
		"team.hcl": `binding "team" {
  for_each    = { for c in csvdecode(file("customers.csv")) : c.phone => c }
  customer_id = each.value.customer_id
  phone       = each.key
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}
`,
	})
	_, _, diags := Load(LoadOptions{Dir: dir})
	if !diags.HasErrors() {
		t.Fatal("loaded; want the phone-like key refused")
	}
	msg := diags.Error()
	for _, want := range []string{`"6281*****2222" looks like a phone number`, "c.customer_id => c"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q; want it to say %q", msg, want)
		}
	}
	if strings.Contains(msg, "6281311112222") {
		t.Errorf("error %q shows the phone number in full", msg)
	}
}
