package contract

// Code is an error code of a result event. The list is closed and documented in the README and in
// schemas/defs.v1.json; a test keeps the three in step.
type Code string

// The error codes.
const (
	CodeInvalidJSON              Code = "invalid_json"               // the body is not JSON (or not an object)
	CodeSchemaViolation          Code = "schema_violation"           // the body breaks the request's schema
	CodeUnsupportedSubject       Code = "unsupported_subject"        // no request kind is published on this subject
	CodeInvalidSecretRef         Code = "invalid_secret_ref"         // credentials_ref does not parse
	CodeForbiddenSecretRef       Code = "forbidden_secret_ref"       // credentials_ref is outside the workspace's path policy
	CodeSecretNotFound           Code = "secret_not_found"           // nothing at the reference
	CodeSecretPermissionDenied   Code = "secret_permission_denied"   // the secret store refused the provisioner
	CodeSecretBackendUnavailable Code = "secret_backend_unavailable" // the secret store could not be reached (retried)
	CodeInvalidCredentials       Code = "invalid_credentials"        // the secret is not a token or OAuth credentials object
	CodeAirbyteBadRequest        Code = "airbyte_bad_request"        // Airbyte answered 400/422 (unknown connector, bad credentials shape)
	CodeAirbyteUnauthorized      Code = "airbyte_unauthorized"       // Airbyte answered 401 even after a fresh token
	CodeAirbyteForbidden         Code = "airbyte_forbidden"          // Airbyte answered 403
	CodeAirbyteNotFound          Code = "airbyte_not_found"          // Airbyte answered 404
	CodeAirbyteUnavailable       Code = "airbyte_unavailable"        // 429/5xx/transport failures outlasted every retry
	CodeLeaseUnavailable         Code = "lease_unavailable"          // another worker held the identity for every delivery
	CodeSuperseded               Code = "superseded"                 // a newer request for the identity was applied first; nothing changed
	CodeCredentialsRejected      Code = "credentials_rejected"       // Airbyte's credential check failed; nothing changed
	CodeNATSUnavailable          Code = "nats_unavailable"           // JetStream or the ledger was unreachable (leader election, restart) for every delivery
	CodeInternal                 Code = "internal_error"             // a bug or an unexpected state; see the logs
)

// Codes lists every code, in documentation order.
var Codes = []Code{
	CodeInvalidJSON, CodeSchemaViolation, CodeUnsupportedSubject, CodeInvalidSecretRef,
	CodeForbiddenSecretRef, CodeSecretNotFound, CodeSecretPermissionDenied, CodeSecretBackendUnavailable,
	CodeInvalidCredentials, CodeAirbyteBadRequest, CodeAirbyteUnauthorized, CodeAirbyteForbidden,
	CodeAirbyteNotFound, CodeAirbyteUnavailable, CodeLeaseUnavailable, CodeSuperseded, CodeCredentialsRejected,
	CodeNATSUnavailable, CodeInternal,
}
