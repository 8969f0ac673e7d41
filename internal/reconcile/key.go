package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// IdempotencyKey derives a partnerRefundNo or partnerReferenceNo from the
// instance's address, its occurrence ("" for a refund) and the attempt
// number (principle 2, docs/principles.md). It depends on nothing random and nothing
// about the state file, so a lost or re-created state file yields the same
// keys and DOKU refuses a duplicate. The result is the prefix and 32
// uppercase hex digits: 32 to 56 characters of [A-Za-z0-9], within the
// 32–64 the Node SDK requires for Allo (UNCONFIRMED: doku.PartnerReferenceNoLength,
// docs/doku.md#payment).
func IdempotencyKey(prefix, address, occurrence string, attempt int) string {
	sum := sha256.Sum256([]byte(address + "\x00" + occurrence + "\x00" + strconv.Itoa(attempt)))
	return prefix + strings.ToUpper(hex.EncodeToString(sum[:16]))
}
