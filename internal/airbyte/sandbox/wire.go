package sandbox

import (
	"encoding/json"
	"time"
)

// The sandbox declares its own wire types (it must not share them with the client, or the
// contract tests would prove nothing). Field names and optionality follow the published specs.

type apiError struct {
	Field     *string        `json:"field"`
	Message   *string        `json:"message"`
	ErrorCode *string        `json:"error_code"`
	Details   map[string]any `json:"details"`
}

type apiErrorResponse struct {
	Message string     `json:"message"`
	Errors  []apiError `json:"errors"`
}

type tokenRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

type tokenResponse struct {
	AccessToken    string `json:"access_token"`
	TokenType      string `json:"token_type"`
	ExpiresIn      int64  `json:"expires_in"`
	OrganizationID string `json:"organization_id"`
}

// scopedTokenRequest covers the scoped and widget token requests, with the customer key under
// each of its three historical names.
type scopedTokenRequest struct {
	WorkspaceName  string  `json:"workspace_name"`
	CustomerName   string  `json:"customer_name"`
	ExternalUserID string  `json:"external_user_id"`
	RegionID       *string `json:"region_id"`
	AllowedOrigin  *string `json:"allowed_origin"`
}

type tokenOnlyResponse struct {
	Token string `json:"token"`
}

type widgetTokenPayload struct {
	Token     string `json:"token"`
	WidgetURL string `json:"widgetUrl"`
}

type scopedTokenInfoResponse struct {
	OrganizationID string `json:"organization_id"`
	WorkspaceID    string `json:"workspace_id"`
	WorkspaceName  string `json:"workspace_name"`
}

type connectionSpecification struct {
	Schema     string         `json:"$schema"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Required   []string       `json:"required"`
	Properties map[string]any `json:"properties"`
}

type connectorSpecification struct {
	DocumentationURL        string                  `json:"documentationUrl"`
	ConnectionSpecification connectionSpecification `json:"connectionSpecification"`
}

type detailedSourceTemplate struct {
	ID                   string                 `json:"id"`
	Name                 string                 `json:"name"`
	Icon                 *string                `json:"icon"`
	SourceDefinitionID   string                 `json:"source_definition_id"`
	UserConfigSpec       connectorSpecification `json:"user_config_spec"`
	PartialDefaultConfig map[string]any         `json:"partial_default_config"`
	Tags                 []string               `json:"tags"`
	Mode                 string                 `json:"mode"`
	IsExperimental       bool                   `json:"is_experimental"`
	CreatedAt            *time.Time             `json:"created_at"`
	UpdatedAt            *time.Time             `json:"updated_at"`
}

// summarizedSourceTemplate is SummarizedSourceTemplate (and the agent spec's SourceTemplateListItem,
// the same schema).
type summarizedSourceTemplate struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Icon              *string    `json:"icon"`
	ConnectorName     *string    `json:"connector_name"`
	OrganizationID    *string    `json:"organization_id"`
	ActorDefinitionID string     `json:"actor_definition_id"`
	Tags              []string   `json:"tags"`
	Mode              string     `json:"mode"`
	CreatedAt         *time.Time `json:"created_at"`
	UpdatedAt         *time.Time `json:"updated_at"`
}

type requestedEntity struct {
	Entity string   `json:"entity"`
	Modes  []string `json:"modes,omitempty"`
}

// connectorResponse is ConnectorSource{Create,Get,Update}Response (identical shapes).
type connectorResponse struct {
	ID                string                 `json:"id"`
	Name              string                 `json:"name"`
	SourceTemplate    detailedSourceTemplate `json:"source_template"`
	ReplicationConfig map[string]any         `json:"replication_config"`
	Entities          []requestedEntity      `json:"entities"`
	CreatedAt         time.Time              `json:"created_at"`
	UpdatedAt         time.Time              `json:"updated_at"`
}

type connectorListItem struct {
	ID                       string                   `json:"id"`
	Name                     string                   `json:"name"`
	SummarizedSourceTemplate summarizedSourceTemplate `json:"summarized_source_template"`
	CreatedAt                time.Time                `json:"created_at"`
	UpdatedAt                time.Time                `json:"updated_at"`
}

type listResponse[T any] struct {
	Data []T `json:"data"`
}

type deleteAcceptedResponse struct {
	JobID string `json:"job_id"`
}

type checkResponse struct {
	ID            string         `json:"id"`
	Status        string         `json:"status"`
	ErrorMessage  *string        `json:"error_message"`
	FailureReason *failureReason `json:"failure_reason"`
}

type failureReason struct {
	Timestamp       int64  `json:"timestamp"` // milliseconds since the epoch
	FailureOrigin   string `json:"failure_origin"`
	FailureType     string `json:"failure_type"`
	ExternalMessage string `json:"external_message"`
	Retryable       *bool  `json:"retryable"`
}

// sourceResponse is Source{Create,Get,Update}Response of the embedded API.
type sourceResponse struct {
	ID             string                 `json:"id"`
	Name           string                 `json:"name"`
	SourceTemplate detailedSourceTemplate `json:"source_template"`
	SourceConfig   map[string]any         `json:"source_config"`
	CreatedAt      time.Time              `json:"created_at"`
	UpdatedAt      time.Time              `json:"updated_at"`
}

type sourceListItem struct {
	ID                       string               `json:"id"`
	Name                     string               `json:"name"`
	SummarizedSourceTemplate embeddedTemplateItem `json:"summarized_source_template"`
	CreatedAt                time.Time            `json:"created_at"`
	UpdatedAt                time.Time            `json:"updated_at"`
}

// embeddedTemplateItem is the embedded API's SummarizedSourceTemplate / SourceTemplateListItem.
type embeddedTemplateItem struct {
	ID                         string     `json:"id"`
	Name                       string     `json:"name"`
	Icon                       *string    `json:"icon"`
	Tags                       []string   `json:"tags"`
	HasSourceDefinitionCatalog bool       `json:"has_source_definition_catalog"`
	CreatedAt                  *time.Time `json:"created_at"`
	UpdatedAt                  *time.Time `json:"updated_at"`
}

type sourceDeleteResponse struct {
	ID        string    `json:"id"`
	DeletedAt time.Time `json:"deleted_at"`
}

type workspaceItem struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	OrganizationID string    `json:"organization_id"`
	Status         string    `json:"status"`
	CacheEnabled   *bool     `json:"cache_enabled"`
	Tombstone      bool      `json:"tombstone"`
	Visibility     string    `json:"visibility"`
	Color          *string   `json:"color"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

type workspaceListResponse struct {
	Next *string         `json:"next"`
	Data []workspaceItem `json:"data"`
}

// rawObject is a JSON object kept as raw members, to tell absent, null and unknown fields apart.
type rawObject map[string]json.RawMessage
