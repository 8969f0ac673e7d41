package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const canary = "sk-canary-5f2e"
	v := New(canary)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", v)
	js, _ := json.Marshal(struct{ S Value }{v})
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", v), "%s": fmt.Sprintf("%s", v), "%+v": fmt.Sprintf("%+v", struct{ S Value }{v}),
		"%#v": fmt.Sprintf("%#v", v), "json": string(js), "slog": logged.String(),
	} {
		if strings.Contains(out, canary) {
			t.Errorf("%s printed the secret: %s", name, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s=%q, want the redaction marker", name, out)
		}
	}
	if v.Reveal() != canary {
		t.Fatalf("Reveal=%q", v.Reveal())
	}
}
