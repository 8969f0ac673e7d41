package doku

import (
	"errors"
	"fmt"
	"testing"
)

// BindingGone is the one place that reads a refused customer-token
// exchange as "the binding is not active" (docs/doku.md#binding).
func TestBindingGone(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"nil":                  {nil, false},
		"403 inactive account": {&Error{Op: OpTokenB2B2C, HTTPStatus: 403, Code: "4037418"}, true},
		"403 wrapped":          {fmt.Errorf("refresh: %w", &Error{Op: OpTokenB2B2C, HTTPStatus: 403, Code: "4037418"}), true},
		"401 invalid authCode": {&Error{Op: OpTokenB2B2C, HTTPStatus: 401, Code: "4017400"}, false},
		"500":                  {&Error{Op: OpTokenB2B2C, HTTPStatus: 500, Code: "5007401"}, false},
		"no answer":            {&Error{Op: OpTokenB2B2C, Err: errors.New("connection refused")}, false},
		"not a DOKU error":     {errors.New("boom"), false},
	} {
		if got := BindingGone(tc.err); got != tc.want {
			t.Errorf("%s: BindingGone(%v) = %v, want %v", name, tc.err, got, tc.want)
		}
	}
}
