package contract

import (
	"encoding/json"
	"time"
)

// CredentialsSubmitted asks for a connector to be created with the credentials a reference points to.
// It is published on <prefix>.requests.credentials.submitted.
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

// Kind is KindCredentialsSubmitted.
func (CredentialsSubmitted) Kind() Kind { return KindCredentialsSubmitted }

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
// It is published on <prefix>.requests.customer.onboarded.
type CustomerOnboarded struct {
	ID            string     `json:"id"`
	WorkspaceName string     `json:"workspace_name"`
	RegionID      string     `json:"region_id,omitempty"`
	OccurredAt    *time.Time `json:"occurred_at,omitempty"`
}

// Kind is KindCustomerOnboarded.
func (CustomerOnboarded) Kind() Kind { return KindCustomerOnboarded }

// lower lower-cases ASCII only: connector kinds are ASCII, and a locale must not change an identity.
func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
