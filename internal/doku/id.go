package doku

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"time"
)

// NewExternalID makes an X-EXTERNAL-ID: numeric, 27 digits (at most 36
// allowed), unique across days and not only within one (docs/doku.md#idempotency): the time in
// nanoseconds and eight random digits.
func NewExternalID(now time.Time) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e8))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return fmt.Sprintf("%019d%08d", now.UnixNano(), n.Int64())
}
