package reconcile

import (
	"regexp"
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	shape := regexp.MustCompile(`^[A-Za-z0-9]{32,64}$`)
	a := IdempotencyKey("SHOP1", `refund.batch["ORD-7"]`, "", 1)
	if a != IdempotencyKey("SHOP1", `refund.batch["ORD-7"]`, "", 1) {
		t.Fatal("not deterministic")
	}
	if !shape.MatchString(a) {
		t.Fatalf("key %q breaks Allo's 32-64 alphanumeric rule", a)
	}
	if got := IdempotencyKey("", "refund.x", "", 1); len(got) != 32 || !shape.MatchString(got) {
		t.Fatalf("key without prefix %q, want 32 characters", got)
	}
	if got := IdempotencyKey("ABCDEFGHIJKLMNOPQRSTUVWX", "refund.x", "", 1); len(got) > 64 {
		t.Fatalf("key with the longest prefix is %d characters", len(got))
	}
	others := map[string]string{
		"address":    IdempotencyKey("SHOP1", `refund.batch["ORD-8"]`, "", 1),
		"occurrence": IdempotencyKey("SHOP1", `refund.batch["ORD-7"]`, "2026-12-01T09:00+07:00", 1),
		"attempt":    IdempotencyKey("SHOP1", `refund.batch["ORD-7"]`, "", 2),
		"prefix":     IdempotencyKey("SHOP2", `refund.batch["ORD-7"]`, "", 1),
	}
	for what, k := range others {
		if k == a {
			t.Errorf("another %s gives the same key %s", what, k)
		}
	}
}
