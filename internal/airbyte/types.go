package airbyte

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

// Types are named as in Airbyte's OpenAPI specs (agent_api_openapi.json; the embedded sources and
// source templates from embedded_api_openapi.json). Free-form objects the client passes through
// are json.RawMessage in responses; request-side free-form objects are map[string]any.

// TagSelectionMode is how a tag list selects: "all" or "any".
type TagSelectionMode string

// Tag selection modes.
const (
	TagSelectionAll TagSelectionMode = "all"
	TagSelectionAny TagSelectionMode = "any"
)

// Region ids for ScopedTokenCreateRequest.RegionID and WidgetTokenCreateRequest.RegionID.
const (
	RegionUS = "645a183f-b12b-4c6e-8ad3-99e165603450"
	RegionEU = "b9e48d61-f082-4a14-a8d0-799a907938cb"
)

// TokenResponse is the application (operator) token.
type TokenResponse struct {
	AccessToken    secret.Value `json:"access_token"`
	TokenType      string       `json:"token_type"`
	ExpiresIn      int64        `json:"expires_in"`
	OrganizationID string       `json:"organization_id,omitempty"`
}

// ScopedTokenCreateRequest asks for a token scoped to one workspace (created if missing).
type ScopedTokenCreateRequest struct {
	WorkspaceName string `json:"workspace_name"`
	RegionID      string `json:"region_id,omitempty"`
}

// ScopedTokenCreateResponse carries a scoped token. Its expiry is only in the JWT's exp claim.
type ScopedTokenCreateResponse struct {
	Token secret.Value `json:"token"`
}

// ScopedTokenInfoGetResponse describes the workspace a scoped token belongs to.
type ScopedTokenInfoGetResponse struct {
	OrganizationID string `json:"organization_id"`
	WorkspaceID    string `json:"workspace_id"`
	WorkspaceName  string `json:"workspace_name"`
}

// WidgetTokenCreateRequest asks for a token an app hands to the embedded widget in a browser.
type WidgetTokenCreateRequest struct {
	WorkspaceName                      string           `json:"workspace_name"`
	RegionID                           string           `json:"region_id,omitempty"`
	AllowedOrigin                      string           `json:"allowed_origin"`
	SelectedSourceTemplateTags         []string         `json:"selected_source_template_tags,omitempty"`
	SelectedSourceTemplateTagsMode     TagSelectionMode `json:"selected_source_template_tags_mode,omitempty"`
	SelectedConnectionTemplateTags     []string         `json:"selected_connection_template_tags,omitempty"`
	SelectedConnectionTemplateTagsMode TagSelectionMode `json:"selected_connection_template_tags_mode,omitempty"`
}

// WidgetTokenCreateResponse carries the widget token: standard base64 of
// {"token": "<jwt>", "widgetUrl": "..."}.
type WidgetTokenCreateResponse struct {
	Token secret.Value `json:"token"`
}

// WorkspaceRef identifies the workspace a scoped token belongs to, read from its claims.
type WorkspaceRef struct {
	ID             string
	Name           string
	OrganizationID string
}

// RequestedEntity selects one entity of a connector and how it is used.
type RequestedEntity struct {
	Entity string   `json:"entity"`
	Modes  []string `json:"modes,omitempty"` // "read", "write"
}

// ConnectorSourceCreateRequest creates a connector. Give one of ConnectorType, DefinitionID or
// SourceTemplateID. Credentials are written to the wire under "credentials" and nowhere else.
type ConnectorSourceCreateRequest struct {
	Name                               string            `json:"name,omitempty"`
	WorkspaceName                      string            `json:"workspace_name"`
	ConnectorType                      string            `json:"connector_type,omitempty"`
	DefinitionID                       string            `json:"definition_id,omitempty"`
	SourceTemplateID                   string            `json:"source_template_id,omitempty"`
	ReplicationConfig                  map[string]any    `json:"replication_config,omitempty"`
	Credentials                        secret.Fields     `json:"-"`
	Environment                        map[string]any    `json:"environment,omitempty"`
	Entities                           []RequestedEntity `json:"entities,omitempty"`
	ServerSideOAuthSecretID            string            `json:"server_side_oauth_secret_id,omitempty"`
	SelectedConnectionTemplateTags     []string          `json:"selected_connection_template_tags,omitempty"`
	SelectedConnectionTemplateTagsMode TagSelectionMode  `json:"selected_connection_template_tags_mode,omitempty"`
}

// ConnectorSourceCheckConfigRequest checks a configuration without creating a connector.
type ConnectorSourceCheckConfigRequest ConnectorSourceCreateRequest

// ConnectorSourceUpdateRequest changes a connector. Credentials cannot change here.
type ConnectorSourceUpdateRequest struct {
	Name              string            `json:"name,omitempty"`
	ReplicationConfig map[string]any    `json:"replication_config,omitempty"`
	Entities          []RequestedEntity `json:"entities,omitempty"`
}

// ConnectorSourceCheckConfigUpdateRequest checks an existing connector, optionally with changes.
type ConnectorSourceCheckConfigUpdateRequest ConnectorSourceUpdateRequest

// ConnectorSourceCreateResponse is a connector as create, get and update return it. The
// replication_config that comes back may hold a redacted credentials value.
type ConnectorSourceCreateResponse struct {
	ID                string                 `json:"id"`
	Name              string                 `json:"name"`
	SourceTemplate    DetailedSourceTemplate `json:"source_template"`
	ReplicationConfig json.RawMessage        `json:"replication_config"`
	Entities          []RequestedEntity      `json:"entities,omitempty"`
	CreatedAt         Time                   `json:"created_at,omitzero"`
	UpdatedAt         Time                   `json:"updated_at,omitzero"`
}

// ConnectorSourceGetResponse is a connector read by id.
type ConnectorSourceGetResponse = ConnectorSourceCreateResponse

// ConnectorSourceUpdateResponse is a connector after an update.
type ConnectorSourceUpdateResponse = ConnectorSourceCreateResponse

// ConnectorSourceListResponse lists a workspace's connectors (no pagination).
type ConnectorSourceListResponse struct {
	Data []ConnectorSourceListItem `json:"data"`
}

// ConnectorSourceListItem is one connector in a list.
type ConnectorSourceListItem struct {
	ID                       string                   `json:"id"`
	Name                     string                   `json:"name"`
	SummarizedSourceTemplate SummarizedSourceTemplate `json:"summarized_source_template"`
	CreatedAt                Time                     `json:"created_at,omitzero"`
	UpdatedAt                Time                     `json:"updated_at,omitzero"`
}

// ConnectorSourceDeleteAcceptedResponse acknowledges an asynchronous delete; the connector may
// still be listed for a while.
type ConnectorSourceDeleteAcceptedResponse struct {
	JobID string `json:"job_id"`
}

// ConnectorSourceCheckConfigResponse is the outcome of a check.
type ConnectorSourceCheckConfigResponse struct {
	ID                 string            `json:"id"`
	Status             string            `json:"status,omitempty"` // pending, running, cancelled, failed, succeeded, inconclusive, skipped
	ErrorMessage       string            `json:"error_message,omitempty"`
	FailureReason      json.RawMessage   `json:"failure_reason,omitempty"`
	EntityCheckResults []json.RawMessage `json:"entity_check_results,omitempty"`
}

// ListConnectorsParams selects the connectors to list.
type ListConnectorsParams struct {
	WorkspaceName string // required
	DefinitionID  string // optional filter
}

// SummarizedSourceTemplate is a source template as lists show it. It is the union of the agent and
// embedded specs' shapes; fields one of them lacks stay empty.
type SummarizedSourceTemplate struct {
	ID                         string          `json:"id"`
	Name                       string          `json:"name"`
	Icon                       string          `json:"icon,omitempty"`
	ConnectorName              string          `json:"connector_name,omitempty"`
	OrganizationID             string          `json:"organization_id,omitempty"`
	ActorDefinitionID          string          `json:"actor_definition_id,omitempty"`
	Tags                       []string        `json:"tags,omitempty"`
	Customization              json.RawMessage `json:"customization,omitempty"`
	Mode                       string          `json:"mode,omitempty"` // DIRECT, REPLICATION, MULTI
	HasSourceDefinitionCatalog bool            `json:"has_source_definition_catalog,omitempty"`
	CatalogType                string          `json:"catalog_type,omitempty"`
	CreatedAt                  Time            `json:"created_at,omitzero"`
	UpdatedAt                  Time            `json:"updated_at,omitzero"`
}

// Matches reports whether a connector_type of a request names this template's connector: its slug
// (ConnectorName, "zendesk-support") or its display name (Name, "Zendesk Support"), in any case,
// as Airbyte matches connector_type. A template that does not tell its slug (the field is
// optional) matches any type: the list says nothing that could tell them apart.
func (t SummarizedSourceTemplate) Matches(connectorType string) bool {
	if t.ConnectorName == "" {
		return true
	}
	return strings.EqualFold(t.ConnectorName, connectorType) || strings.EqualFold(t.Name, connectorType)
}

// Matches reports whether connectorType names this connector's kind (see
// SummarizedSourceTemplate.Matches).
func (i ConnectorSourceListItem) Matches(connectorType string) bool {
	return i.SummarizedSourceTemplate.Matches(connectorType)
}

// DetailedSourceTemplate is a source template with its configuration specification.
type DetailedSourceTemplate struct {
	ID                   string          `json:"id"`
	Name                 string          `json:"name"`
	Icon                 string          `json:"icon,omitempty"`
	SourceDefinitionID   string          `json:"source_definition_id"`
	UserConfigSpec       json.RawMessage `json:"user_config_spec"`
	PartialDefaultConfig json.RawMessage `json:"partial_default_config"`
	Customization        json.RawMessage `json:"customization,omitempty"`
	Tags                 []string        `json:"tags,omitempty"`
	Mode                 string          `json:"mode,omitempty"` // DIRECT, REPLICATION, MULTI
	IsExperimental       bool            `json:"is_experimental,omitempty"`
	CreatedAt            Time            `json:"created_at,omitzero"`
	UpdatedAt            Time            `json:"updated_at,omitzero"`
}

// SourceCreateRequest creates an embedded (template-based) source. WorkspaceID may be left empty:
// the client fills it from the workspace's scoped token. Credentials are written to the wire under
// source_config.credentials and nowhere else.
type SourceCreateRequest struct {
	Name                               string           `json:"name,omitempty"`
	WorkspaceID                        string           `json:"workspace_id"`
	SourceTemplateID                   string           `json:"source_template_id"`
	SourceConfig                       map[string]any   `json:"source_config"`
	Credentials                        secret.Fields    `json:"-"`
	SelectedConnectionTemplateTags     []string         `json:"selected_connection_template_tags,omitempty"`
	SelectedConnectionTemplateTagsMode TagSelectionMode `json:"selected_connection_template_tags_mode,omitempty"`
}

// SourceUpdateRequest changes an embedded source. Credentials, when set, replace
// source_config.credentials.
type SourceUpdateRequest struct {
	Name         string         `json:"name,omitempty"`
	SourceConfig map[string]any `json:"source_config,omitempty"`
	Credentials  secret.Fields  `json:"-"`
}

// SourceCreateResponse is an embedded source as create, get and update return it.
type SourceCreateResponse struct {
	ID             string                 `json:"id"`
	Name           string                 `json:"name"`
	SourceTemplate DetailedSourceTemplate `json:"source_template"`
	SourceConfig   json.RawMessage        `json:"source_config"`
	CreatedAt      Time                   `json:"created_at,omitzero"`
	UpdatedAt      Time                   `json:"updated_at,omitzero"`
}

// SourceGetResponse is an embedded source read by id.
type SourceGetResponse = SourceCreateResponse

// SourceUpdateResponse is an embedded source after an update.
type SourceUpdateResponse = SourceCreateResponse

// SourceListResponse lists a workspace's embedded sources.
type SourceListResponse struct {
	Data []SourceListItem `json:"data"`
}

// SourceListItem is one embedded source in a list.
type SourceListItem struct {
	ID                       string                   `json:"id"`
	Name                     string                   `json:"name"`
	SummarizedSourceTemplate SummarizedSourceTemplate `json:"summarized_source_template"`
	CreatedAt                Time                     `json:"created_at,omitzero"`
	UpdatedAt                Time                     `json:"updated_at,omitzero"`
}

// SourceDeleteResponse acknowledges a deleted embedded source.
type SourceDeleteResponse struct {
	ID        string `json:"id"`
	DeletedAt Time   `json:"deleted_at"`
}

// SourceTemplateListResponse lists the source templates a workspace may use.
type SourceTemplateListResponse struct {
	Data []SourceTemplateListItem `json:"data"`
}

// SourceTemplateListItem is one source template in a list.
type SourceTemplateListItem = SummarizedSourceTemplate

// SourceTemplateListParams filters source templates by tag.
type SourceTemplateListParams struct {
	WorkspaceName string // required: the scoped token's workspace
	Tags          []string
	TagsMode      TagSelectionMode
}

// WorkspaceGetResponse is a workspace.
type WorkspaceGetResponse struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	OrganizationID string `json:"organization_id"`
	Status         string `json:"status"` // active, inactive
	CacheEnabled   *bool  `json:"cache_enabled"`
	Tombstone      bool   `json:"tombstone"`
	Visibility     string `json:"visibility"` // shared, private
	Color          string `json:"color,omitempty"`
	CreatedAt      Time   `json:"created_at"`
	UpdatedAt      Time   `json:"updated_at"`
}

// Workspace statuses.
const (
	WorkspaceActive   = "active"
	WorkspaceInactive = "inactive"
)

// WorkspaceUpdateRequest changes a workspace; empty fields are left as they are.
type WorkspaceUpdateRequest struct {
	Name         string `json:"name,omitempty"`
	Status       string `json:"status,omitempty"` // WorkspaceActive or WorkspaceInactive
	CacheEnabled *bool  `json:"cache_enabled,omitempty"`
}

// WorkspaceUpdateResponse is a workspace after an update.
type WorkspaceUpdateResponse = WorkspaceGetResponse

// WorkspaceDeleteResponse acknowledges a deleted workspace.
type WorkspaceDeleteResponse struct {
	ID        string `json:"id"`
	DeletedAt Time   `json:"deleted_at"`
}

// WorkspaceListItem is one workspace in a list.
type WorkspaceListItem = WorkspaceGetResponse

// WorkspaceListResponse is one page of workspaces; Next is the URL of the following page, empty
// on the last (ListWorkspaces returns every page at once, with Next empty).
type WorkspaceListResponse struct {
	Next string              `json:"next,omitempty"`
	Data []WorkspaceListItem `json:"data"`
}

// WorkspaceListParams filters the workspace list.
type WorkspaceListParams struct {
	NameContains string
	Status       string // active, inactive
	Limit        int    // page size; 0 = the API's default
}

// Time is a timestamp as the API writes it: RFC 3339, or without an offset (FastAPI's naive
// datetimes, read as UTC). A failed parse of a harmless field must not turn a successful create
// into an error.
type Time struct{ time.Time }

var naiveLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// UnmarshalJSON reads RFC 3339 or an offset-less timestamp; null leaves t zero.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if s == "" {
		return nil
	}
	if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t.Time = v
		return nil
	}
	for _, layout := range naiveLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return fmt.Errorf("timestamp %q: not RFC 3339", s)
}

// MarshalJSON writes RFC 3339 in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}
