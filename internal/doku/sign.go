package doku

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
)

// The signatures of SNAP, as pure functions over the exact values
// sent. The client signs with them and the sandbox verifies with them, so the
// two can never disagree on the bytes.

// BodyHash is lowercase hex SHA-256 of the body bytes as sent (docs/doku.md#symmetric-signature).
// Minify is body as DOKU hashes it for a symmetric signature: its
// stringToSign hashes minify(RequestBody)
// (https://developers.doku.com/get-started-with-doku-api/signature-component/snap/symmetric-signature,
// docs/doku.md#symmetric-signature), JSON with no whitespace between its
// tokens. A body that is not JSON is returned as it is, and is refused
// after the signature check anyway.
func Minify(body []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, body) != nil {
		return body
	}
	return buf.Bytes()
}

func BodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// SymmetricStringToSign builds
// METHOD:path:accessToken:bodyHash:timestamp (docs/doku.md#symmetric-signature). token is the B2B
// token without the "Bearer " prefix.
func SymmetricStringToSign(method, path, token string, body []byte, timestamp string) string {
	return strings.ToUpper(method) + ":" + path + ":" + token + ":" + BodyHash(body) + ":" + timestamp
}

// SignSymmetric is the X-SIGNATURE of a transactional call: standard Base64
// of HMAC-SHA512 keyed with the client secret (docs/doku.md#symmetric-signature).
func SignSymmetric(clientSecret, method, path, token string, body []byte, timestamp string) string {
	mac := hmac.New(sha512.New, []byte(clientSecret))
	mac.Write([]byte(SymmetricStringToSign(method, path, token, body, timestamp)))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifySymmetric reports whether signature is the symmetric signature of
// the request, compared exactly and in constant time.
func VerifySymmetric(clientSecret, method, path, token string, body []byte, timestamp, signature string) bool {
	want := SignSymmetric(clientSecret, method, path, token, body, timestamp)
	return subtle.ConstantTimeCompare([]byte(want), []byte(signature)) == 1
}

// AsymmetricStringToSign is clientId|timestamp, the string of a token
// request (docs/doku.md#asymmetric-signature).
func AsymmetricStringToSign(clientID, timestamp string) string {
	return clientID + "|" + timestamp
}

// SignAsymmetric is the X-SIGNATURE of a token request: standard Base64 of
// RSASSA-PKCS1-v1_5 over SHA-256 of clientId|timestamp (docs/doku.md#asymmetric-signature).
func SignAsymmetric(key *rsa.PrivateKey, clientID, timestamp string) (string, error) {
	sum := sha256.Sum256([]byte(AsymmetricStringToSign(clientID, timestamp)))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// ErrBadSignature is returned by VerifyAsymmetric for a signature that does
// not verify or is not Base64.
var ErrBadSignature = errors.New("signature does not verify")

// VerifyAsymmetric checks a token request's X-SIGNATURE with the signer's
// public key.
func VerifyAsymmetric(key *rsa.PublicKey, clientID, timestamp, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return ErrBadSignature
	}
	sum := sha256.Sum256([]byte(AsymmetricStringToSign(clientID, timestamp)))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return ErrBadSignature
	}
	return nil
}
