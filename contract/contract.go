// Package contract is the provisioner's public v1 wire contract: the requests an app publishes, the
// result (verdict) the worker publishes for each, the closed list of error codes, and the subjects
// both travel on. The worker and the client package use these same types, so they cannot disagree;
// the JSON Schemas in schemas/ describe the same documents for apps in other languages.
package contract

// Kind is the kind of a request, taken from its subject (<prefix>.requests.<kind with dots>).
type Kind string

// Request kinds. The value doubles as the metrics label.
const (
	KindCredentialsSubmitted  Kind = "credentials_submitted"
	KindCustomerOnboarded     Kind = "customer_onboarded"
	KindConnectorDisconnected Kind = "connector_disconnected"
	KindCustomerOffboarded    Kind = "customer_offboarded"
	KindUnknown               Kind = "unknown"
)

// Kinds lists every request kind an app can publish, each with its request type (NewRequest).
var Kinds = []Kind{KindCustomerOnboarded, KindCredentialsSubmitted, KindConnectorDisconnected, KindCustomerOffboarded}

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
	case KindConnectorDisconnected:
		return new(ConnectorDisconnected), true
	case KindCustomerOffboarded:
		return new(CustomerOffboarded), true
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
	case KindConnectorDisconnected:
		return "connector.disconnected"
	case KindCustomerOffboarded:
		return "customer.offboarded"
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
	case "connector.disconnected":
		return KindConnectorDisconnected
	case "customer.offboarded":
		return KindCustomerOffboarded
	}
	return KindUnknown
}

// SuccessMessage is the result message a successful request of this kind ends in (for
// credentials.submitted: when the identity had no connector; else source_updated).
func (k Kind) SuccessMessage() string {
	switch k {
	case KindCustomerOnboarded:
		return MessageWorkspaceReady
	case KindConnectorDisconnected:
		return MessageSourceDeleted
	case KindCustomerOffboarded:
		return MessageWorkspaceOffboarded
	}
	return MessageSourceCreated
}

// ErrorMessage is the result message of a failed request of this kind (for credentials.submitted:
// when the identity had no connector; else source_update_error).
func (k Kind) ErrorMessage() string {
	switch k {
	case KindCustomerOnboarded:
		return MessageWorkspaceError
	case KindConnectorDisconnected:
		return MessageSourceDeleteError
	case KindCustomerOffboarded:
		return MessageWorkspaceOffboardError
	}
	return MessageSourceCreateError
}

// Result messages (the message field of a result, and a token of its subject).
const (
	MessageSourceCreated          = "source_created"
	MessageSourceCreateError      = "source_create_error"
	MessageSourceUpdated          = "source_updated"
	MessageSourceUpdateError      = "source_update_error"
	MessageSourceDeleted          = "source_deleted"
	MessageSourceDeleteError      = "source_delete_error"
	MessageWorkspaceReady         = "workspace_ready"
	MessageWorkspaceError         = "workspace_error"
	MessageWorkspaceOffboarded    = "workspace_offboarded"
	MessageWorkspaceOffboardError = "workspace_offboard_error"
)
