package doku

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// A test vector of the symmetric signature.
func TestSignSymmetricVector(t *testing.T) {
	const (
		secret    = "demo-client-secret-0001"
		path      = "/direct-debit/core/v1/debit/payment-host-to-host"
		token     = "tok-b2b-example-0001"
		timestamp = "2025-03-14T10:15:30+07:00"
		body      = `{"partnerReferenceNo":"ORD-7F3A91C2E55B40D8A1C6B2E9F0D4A7B3","amount":{"value":"25000.00","currency":"IDR"},"additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP","remarks":"Order 7F3A91C2","successPaymentUrl":"https://shop.example.test/pay/ok","failedPaymentUrl":"https://shop.example.test/pay/fail","lineItems":[{"name":"Kopi Susu","price":"25000.00","quantity":"1"}]}}`

		wantHash = "2ceea0d88db7e86da1caea01bd1673db4b6a27f07a666436402c529c0ba73f7c"
		wantSTS  = "POST:/direct-debit/core/v1/debit/payment-host-to-host:tok-b2b-example-0001:2ceea0d88db7e86da1caea01bd1673db4b6a27f07a666436402c529c0ba73f7c:2025-03-14T10:15:30+07:00"
		wantSig  = "L3+TSl47AhrHhjUSSvI/lkRzKtY/lgsMe4hStdOhuij8LsK5SS4NoUigqia+z+pdNTmiYb2twlSeZqWKSaAXBw=="
	)
	if got := BodyHash([]byte(body)); got != wantHash {
		t.Fatalf("BodyHash=%s, want %s", got, wantHash)
	}
	if got := SymmetricStringToSign("POST", path, token, []byte(body), timestamp); got != wantSTS {
		t.Fatalf("stringToSign=%s, want %s", got, wantSTS)
	}
	if got := SignSymmetric(secret, "POST", path, token, []byte(body), timestamp); got != wantSig {
		t.Fatalf("X-SIGNATURE=%s, want %s", got, wantSig)
	}
	if !VerifySymmetric(secret, "POST", path, token, []byte(body), timestamp, wantSig) {
		t.Fatal("VerifySymmetric refused the vector's signature")
	}
	// One changed byte anywhere must fail.
	if VerifySymmetric(secret, "POST", path, token, []byte(body+" "), timestamp, wantSig) {
		t.Fatal("VerifySymmetric accepted a changed body")
	}
	if VerifySymmetric(secret, "POST", path, "tok-b2b-example-0002", []byte(body), timestamp, wantSig) {
		t.Fatal("VerifySymmetric accepted another token")
	}
}

func TestSignAsymmetric(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const id, ts = "BRN-0001-1700000000000", "2025-03-14T10:15:30+07:00"
	sig, err := SignAsymmetric(key, id, ts)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 344 {
		t.Fatalf("len(signature)=%d, want 344 for a 2048-bit key", len(sig))
	}
	if err := VerifyAsymmetric(&key.PublicKey, id, ts, sig); err != nil {
		t.Fatalf("VerifyAsymmetric: %v", err)
	}
	if err := VerifyAsymmetric(&key.PublicKey, id, "2025-03-14T10:15:31+07:00", sig); err == nil {
		t.Fatal("VerifyAsymmetric accepted another timestamp")
	}
	if err := VerifyAsymmetric(&key.PublicKey, id, ts, "not base64!"); err == nil {
		t.Fatal("VerifyAsymmetric accepted garbage")
	}
}
