// Package event owns the provisioner's v1 event contracts on the wire: request decoding and
// validation against schemas/, the result message, and the closed list of error codes.
package event

import (
	"encoding/json"
	"time"
)

// Kind is the kind of a request, taken from its subject (<prefix>.requests.<kind with dots>).
type Kind string

// Request kinds. The value doubles as the metrics label.
const (
	KindCredentialsSubmitted Kind = "credentials_submitted"
	KindCustomerOnboarded    Kind = "customer_onboarded"
	KindUnknown              Kind = "unknown"
)

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

// SuccessMessage and ErrorMessage are the result messages a kind ends in.
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

// Result messages (the last subject token of a result).
const (
	MessageSourceCreated     = "source_created"
	MessageSourceCreateError = "source_create_error"
	MessageWorkspaceReady    = "workspace_ready"
	MessageWorkspaceError    = "workspace_error"
)

// CredentialsSubmitted asks for a connector to be created with the credentials a reference points to.
type CredentialsSubmitted struct {
	ID                string          `json:"id"`
	WorkspaceName     string          `json:"workspace_name"`
	ConnectorType     string          `json:"connector_type,omitempty"`
	DefinitionID      string          `json:"definition_id,omitempty"`
	SourceTemplateID  string          `json:"source_template_id,omitempty"`
	Name              string          `json:"name,omitempty"`
	CredentialsRef    string          `json:"credentials_ref"`
	ReplicationConfig json.RawMessage `json:"replication_config,omitempty"`
	OccurredAt        *time.Time      `json:"occurred_at,omitempty"`
}

// ConnectorKind is the identity's kind part: "type:github", "definition:<uuid>" or "template:<uuid>".
// Connector types match case-insensitively at Airbyte, so they are lower-cased here.
func (r *CredentialsSubmitted) ConnectorKind() string {
	switch {
	case r.ConnectorType != "":
		return "type:" + lower(r.ConnectorType)
	case r.DefinitionID != "":
		return "definition:" + lower(r.DefinitionID)
	default:
		return "template:" + lower(r.SourceTemplateID)
	}
}

// ConnectorName is the name the connector is created with: the request's, or else the kind as given.
func (r *CredentialsSubmitted) ConnectorName() string {
	switch {
	case r.Name != "":
		return r.Name
	case r.ConnectorType != "":
		return r.ConnectorType
	case r.DefinitionID != "":
		return r.DefinitionID
	default:
		return r.SourceTemplateID
	}
}

// CustomerOnboarded asks for the customer's workspace to exist.
type CustomerOnboarded struct {
	ID            string     `json:"id"`
	WorkspaceName string     `json:"workspace_name"`
	RegionID      string     `json:"region_id,omitempty"`
	OccurredAt    *time.Time `json:"occurred_at,omitempty"`
}

// Request is a decoded, valid request: exactly one of the pointers is set.
type Request struct {
	Kind                 Kind
	CredentialsSubmitted *CredentialsSubmitted
	CustomerOnboarded    *CustomerOnboarded
}

// ID is the request id.
func (r Request) ID() string {
	switch {
	case r.CredentialsSubmitted != nil:
		return r.CredentialsSubmitted.ID
	case r.CustomerOnboarded != nil:
		return r.CustomerOnboarded.ID
	}
	return ""
}

// WorkspaceName is the request's workspace.
func (r Request) WorkspaceName() string {
	switch {
	case r.CredentialsSubmitted != nil:
		return r.CredentialsSubmitted.WorkspaceName
	case r.CustomerOnboarded != nil:
		return r.CustomerOnboarded.WorkspaceName
	}
	return ""
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
