// Package contract is the provisioner's public v1 wire contract: the requests an app publishes, the
// result (verdict) the worker publishes for each, the closed list of error codes, and the subjects
// both travel on. The worker and the client package use these same types, so they cannot disagree;
// the JSON Schemas in schemas/ describe the same documents for apps in other languages.
package contract

// Kind is the kind of a request, taken from its subject (<prefix>.requests.<kind with dots>).
type Kind string

// Request kinds. The value doubles as the metrics label.
const (
	KindCredentialsSubmitted Kind = "credentials_submitted"
	KindCustomerOnboarded    Kind = "customer_onboarded"
	KindUnknown              Kind = "unknown"
)

// Kinds lists every request kind an app can publish, each with its request type (NewRequest).
var Kinds = []Kind{KindCustomerOnboarded, KindCredentialsSubmitted}

// Request is a typed request: every request type of the contract implements it.
type Request interface {
	// Kind is the request's kind, which names its subject and schema.
	Kind() Kind
}

// NewRequest returns an empty request of kind k, to decode a body into, or false for an unknown kind.
func NewRequest(k Kind) (Request, bool) {
	switch k {
	case KindCredentialsSubmitted:
		return new(CredentialsSubmitted), true
	case KindCustomerOnboarded:
		return new(CustomerOnboarded), true
	}
	return nil, false
}

// SubjectSuffix is the part of the subject after "<prefix>.requests.".
func (k Kind) SubjectSuffix() string {
	switch k {
	case KindCredentialsSubmitted:
		return "credentials.submitted"
	case KindCustomerOnboarded:
		return "customer.onboarded"
	}
	return ""
}

// KindFromSuffix maps a subject suffix to a kind.
func KindFromSuffix(suffix string) Kind {
	switch suffix {
	case "credentials.submitted":
		return KindCredentialsSubmitted
	case "customer.onboarded":
		return KindCustomerOnboarded
	}
	return KindUnknown
}

// SuccessMessage is the result message a successful request of this kind ends in.
func (k Kind) SuccessMessage() string {
	if k == KindCustomerOnboarded {
		return MessageWorkspaceReady
	}
	return MessageSourceCreated
}

// ErrorMessage is the result message of a failed request of this kind.
func (k Kind) ErrorMessage() string {
	if k == KindCustomerOnboarded {
		return MessageWorkspaceError
	}
	return MessageSourceCreateError
}

// Result messages (the message field of a result, and a token of its subject).
const (
	MessageSourceCreated     = "source_created"
	MessageSourceCreateError = "source_create_error"
	MessageWorkspaceReady    = "workspace_ready"
	MessageWorkspaceError    = "workspace_error"
)
