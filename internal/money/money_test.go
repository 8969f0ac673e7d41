package money

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Amount
		err  error
	}{
		{"150000", 15000000, nil},
		{"150000.5", 15000050, nil},
		{"150000.50", 15000050, nil},
		{"150000.500", 15000050, nil},
		{"0", 0, nil},
		{"0.01", 1, nil},
		{"007", 700, nil},
		{"9999999999999999.99", MaxAmount, nil},
		{"10000000000000000", 0, ErrTooLarge},
		{"100000000000000000", 0, ErrTooLarge},
		{"1.001", 0, ErrDecimals},
		{"-5", 0, ErrNegative},
		{"abc", 0, ErrSyntax},
		{"", 0, ErrSyntax},
		{"1.", 0, ErrSyntax},
		{".5", 0, ErrSyntax},
		{"1,000", 0, ErrSyntax},
		{"1e5", 0, ErrSyntax},
		{"+5", 0, ErrSyntax},
		{" 5", 0, ErrSyntax},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Parse(%q)=%d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseWire(t *testing.T) {
	for _, ok := range []string{"0.00", "25000.00", "9999999999999999.99"} {
		if _, err := ParseWire(ok); err != nil {
			t.Errorf("ParseWire(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"25000", "25000.0", "25000.000", "025000.00", "-1.00", "1,000.00", "", "10000000000000000.00"} {
		if _, err := ParseWire(bad); err == nil {
			t.Errorf("ParseWire(%q) accepted", bad)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		a           Amount
		value, text string
	}{
		{15000000, "150000.00", "IDR 150,000.00"},
		{1999999, "19999.99", "IDR 19,999.99"},
		{5, "0.05", "IDR 0.05"},
		{100000, "1000.00", "IDR 1,000.00"},
		{99999, "999.99", "IDR 999.99"},
		{MaxAmount, "9999999999999999.99", "IDR 9,999,999,999,999,999.99"},
		{-150, "-1.50", "IDR -1.50"},
	}
	for _, tt := range tests {
		if got := tt.a.Value(); got != tt.value {
			t.Errorf("Value(%d)=%q, want %q", tt.a, got, tt.value)
		}
		if got := tt.a.String(); got != tt.text {
			t.Errorf("String(%d)=%q, want %q", tt.a, got, tt.text)
		}
	}
}

// FuzzParse: no panic, and whatever parses prints back to an amount that
// parses to the same value (round trip through the wire form).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"150000", "150000.50", "0.01", "1.001", "-5", "abc", "9999999999999999.99", "10000000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		if a < 0 || a > MaxAmount {
			t.Fatalf("Parse(%q)=%d, out of range", s, a)
		}
		back, err := ParseWire(a.Value())
		if err != nil || back != a {
			t.Fatalf("Parse(%q)=%d; ParseWire(%q)=%d, %v", s, a, a.Value(), back, err)
		}
	})
}
