package reconcile

import "testing"

func TestTargetsMatch(t *testing.T) {
	tg := Targets{"refund.a", `binding.b["x"]`, "recurring_charge.c#2026-01-01T09:00+07:00", "recurring_charge.d"}
	for _, tc := range []struct {
		addr           string
		match, touches bool
	}{
		{"refund.a", true, true},
		{`refund.a["k"]`, true, true},
		{"refund.ab", false, false},
		{"refund.b", false, false},
		{`binding.b["x"]`, true, true},
		{`binding.b["y"]`, false, false},
		{"binding.b", false, false},
		{"recurring_charge.c#2026-01-01T09:00+07:00", true, true},
		{"recurring_charge.c#2026-02-01T09:00+07:00", false, false},
		{"recurring_charge.c", false, true},
		{"recurring_charge.d#2026-02-01T09:00+07:00", true, true},
		{`recurring_charge.d["k"]#2026-02-01T09:00+07:00`, true, true},
		{"recurring_charge.dd", false, false},
	} {
		if got := tg.Match(tc.addr); got != tc.match {
			t.Errorf("Match(%s) = %v, want %v", tc.addr, got, tc.match)
		}
		if got := tg.Touches(tc.addr); got != tc.touches {
			t.Errorf("Touches(%s) = %v, want %v", tc.addr, got, tc.touches)
		}
	}
	if !Targets(nil).Match("refund.anything") {
		t.Error("no targets must match everything")
	}
}
