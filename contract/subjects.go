package contract

import (
	"crypto/sha256"
	"encoding/hex"
)

// The default names; a deployment may change each (the worker's --subject-prefix, --requests-stream,
// --results-stream, --dlq-stream).
const (
	DefaultSubjectPrefix  = "provisioner"
	DefaultRequestsStream = "PROVISIONER_REQUESTS"
	DefaultResultsStream  = "PROVISIONER_RESULTS"
	DefaultDLQStream      = "PROVISIONER_DLQ"
)

// RequestSubject is the subject a request of kind k is published on: <prefix>.requests.<suffix>.
func RequestSubject(prefix string, k Kind) string {
	return prefix + ".requests." + k.SubjectSuffix()
}

// ResultSubject is the subject a request's result is published on:
// <prefix>.results.<message>.<request token>. The request token lets an app find the verdict of one
// request (ResultFilter) without reading the others; "<prefix>.results.>" still matches every result.
func ResultSubject(prefix, message, requestID string) string {
	return prefix + ".results." + message + "." + RequestToken(requestID)
}

// ResultFilter is the subject filter that matches every result of one request, whatever its message.
func ResultFilter(prefix, requestID string) string {
	return prefix + ".results.*." + RequestToken(requestID)
}

// maxPlainToken is the longest request id used as its own subject token.
const maxPlainToken = 64

// RequestToken is the last subject token of a request's results: the request id itself when it is
// 1 to 64 ASCII letters, digits, '-' or '_' (a UUID is), or else "sha256-" followed by the first 32
// lowercase hex digits of the SHA-256 of the id (ids may hold '.', '*' or '>', which a subject token
// cannot). Two ids can share a token only by a deliberate choice of id; a result's request_id is
// what identifies it, so readers compare it too.
func RequestToken(requestID string) string {
	if plainToken(requestID) {
		return requestID
	}
	sum := sha256.Sum256([]byte(requestID))
	return "sha256-" + hex.EncodeToString(sum[:16])
}

func plainToken(s string) bool {
	if s == "" || len(s) > maxPlainToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
