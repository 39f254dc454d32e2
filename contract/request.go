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
	// Check asks for Airbyte's credential check before the connector is created or replaced:
	// rejected credentials end in credentials_rejected and change nothing.
	Check      bool       `json:"check,omitempty"`
	OccurredAt *time.Time `json:"occurred_at,omitempty"`
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

// ConnectorDisconnected asks for the identity's connector not to exist (it keeps a tombstone, so a
// create published before it cannot bring the connector back).
// It is published on <prefix>.requests.connector.disconnected.
type ConnectorDisconnected struct {
	ID               string     `json:"id"`
	WorkspaceName    string     `json:"workspace_name"`
	ConnectorType    string     `json:"connector_type,omitempty"`
	DefinitionID     string     `json:"definition_id,omitempty"`
	SourceTemplateID string     `json:"source_template_id,omitempty"`
	Name             string     `json:"name,omitempty"`
	OccurredAt       *time.Time `json:"occurred_at,omitempty"`
}

// Kind is KindConnectorDisconnected.
func (ConnectorDisconnected) Kind() Kind { return KindConnectorDisconnected }

// ConnectorKind is the identity's kind part, as for CredentialsSubmitted.
func (r *ConnectorDisconnected) ConnectorKind() string {
	return (&CredentialsSubmitted{ConnectorType: r.ConnectorType, DefinitionID: r.DefinitionID, SourceTemplateID: r.SourceTemplateID}).ConnectorKind()
}

// ConnectorName is the identity's name, as for CredentialsSubmitted.
func (r *ConnectorDisconnected) ConnectorName() string {
	return (&CredentialsSubmitted{Name: r.Name, ConnectorType: r.ConnectorType, DefinitionID: r.DefinitionID, SourceTemplateID: r.SourceTemplateID}).ConnectorName()
}

// Workspace actions of an offboarding.
const (
	WorkspaceKeep       = "keep"
	WorkspaceDeactivate = "deactivate"
	WorkspaceDelete     = "delete"
)

// CustomerOffboarded asks for every connector of the workspace to be deleted, then for the
// workspace to be kept (default), deactivated or deleted.
// It is published on <prefix>.requests.customer.offboarded.
type CustomerOffboarded struct {
	ID            string     `json:"id"`
	WorkspaceName string     `json:"workspace_name"`
	Workspace     string     `json:"workspace,omitempty"` // keep | deactivate | delete; "" = keep
	OccurredAt    *time.Time `json:"occurred_at,omitempty"`
}

// Kind is KindCustomerOffboarded.
func (CustomerOffboarded) Kind() Kind { return KindCustomerOffboarded }

// WorkspaceAction is the workspace action, with the default applied.
func (r *CustomerOffboarded) WorkspaceAction() string {
	if r.Workspace == "" {
		return WorkspaceKeep
	}
	return r.Workspace
}

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
