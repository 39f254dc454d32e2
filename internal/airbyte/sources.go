package airbyte

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

const sourcesPath = "/api/v1/embedded/sources"

// CreateSource creates an embedded (template-based) source in workspaceName, authenticated with
// its scoped token. req.WorkspaceID may be empty: it is read from the token; a different id is
// refused, so that a source can only be created in the workspace the token belongs to.
//
// Like CreateConnector it is not idempotent: only a 429 or a failure before the request was written
// is replayed; anything else comes back with IsAmbiguous(err) == true. List and adopt before
// creating again.
func (c *Client) CreateSource(ctx context.Context, workspaceName string, req SourceCreateRequest) (*SourceCreateResponse, error) {
	ws, err := c.Workspace(ctx, workspaceName)
	if err != nil {
		return nil, err
	}
	switch req.WorkspaceID {
	case "":
		req.WorkspaceID = ws.ID
	case ws.ID:
	default:
		return nil, errors.New("airbyte sources_create: workspace id does not belong to the workspace name")
	}
	type plain SourceCreateRequest
	cfg := sourceConfig(req.SourceConfig, req.Credentials)
	if cfg == nil {
		cfg = map[string]any{}
	}
	body, err := json.Marshal(struct {
		plain
		SourceConfig map[string]any `json:"source_config"`
	}{plain(req), cfg})
	if err != nil {
		return nil, fmt.Errorf("airbyte sources_create: %w", err)
	}
	var out SourceCreateResponse
	err = c.do(ctx, &call{op: "sources_create", method: http.MethodPost, path: sourcesPath, body: body,
		auth: authScoped, workspace: workspaceName, createsResource: true,
		secrets: revealValues(req.Credentials.RevealEach)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListSources lists the embedded sources of workspaceName.
func (c *Client) ListSources(ctx context.Context, workspaceName string) (*SourceListResponse, error) {
	ws, err := c.Workspace(ctx, workspaceName)
	if err != nil {
		return nil, err
	}
	var out SourceListResponse
	err = c.do(ctx, &call{op: "sources_list", method: http.MethodGet, path: sourcesPath,
		query: url.Values{"workspace_id": {ws.ID}}, auth: authScoped, workspace: workspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetSource reads one embedded source of workspaceName.
func (c *Client) GetSource(ctx context.Context, workspaceName, id string) (*SourceGetResponse, error) {
	if err := checkScoped(workspaceName, id); err != nil {
		return nil, err
	}
	var out SourceGetResponse
	err := c.do(ctx, &call{op: "sources_get", method: http.MethodGet, path: sourcesPath + "/" + url.PathEscape(id),
		auth: authScoped, workspace: workspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateSource changes an embedded source's name or configuration (credentials included).
func (c *Client) UpdateSource(ctx context.Context, workspaceName, id string, req SourceUpdateRequest) (*SourceUpdateResponse, error) {
	if err := checkScoped(workspaceName, id); err != nil {
		return nil, err
	}
	type plain SourceUpdateRequest
	body, err := json.Marshal(struct {
		plain
		SourceConfig map[string]any `json:"source_config,omitempty"`
	}{plain(req), sourceConfig(req.SourceConfig, req.Credentials)})
	if err != nil {
		return nil, fmt.Errorf("airbyte sources_update: %w", err)
	}
	var out SourceUpdateResponse
	err = c.do(ctx, &call{op: "sources_update", method: http.MethodPut, path: sourcesPath + "/" + url.PathEscape(id),
		body: body, auth: authScoped, workspace: workspaceName, secrets: revealValues(req.Credentials.RevealEach)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSource deletes an embedded source.
func (c *Client) DeleteSource(ctx context.Context, workspaceName, id string) (*SourceDeleteResponse, error) {
	if err := checkScoped(workspaceName, id); err != nil {
		return nil, err
	}
	var out SourceDeleteResponse
	err := c.do(ctx, &call{op: "sources_delete", method: http.MethodDelete, path: sourcesPath + "/" + url.PathEscape(id),
		auth: authScoped, workspace: workspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListSourceTemplates lists the source templates p.WorkspaceName may use, optionally by tag.
func (c *Client) ListSourceTemplates(ctx context.Context, p SourceTemplateListParams) (*SourceTemplateListResponse, error) {
	if p.WorkspaceName == "" {
		return nil, errNoWorkspace
	}
	q := url.Values{}
	for _, t := range p.Tags {
		q.Add("tags", t)
	}
	if p.TagsMode != "" {
		q.Set("tags_mode", string(p.TagsMode))
	}
	var out SourceTemplateListResponse
	err := c.do(ctx, &call{op: "source_templates_list", method: http.MethodGet, path: "/api/v1/embedded/source-templates",
		query: q, auth: authScoped, workspace: p.WorkspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// sourceConfig returns cfg with the credentials under "credentials" (a copy; cfg is not changed).
// Nil when both are empty.
func sourceConfig(cfg map[string]any, creds secret.Fields) map[string]any {
	if creds.Len() == 0 {
		return cfg
	}
	out := maps.Clone(cfg)
	if out == nil {
		out = make(map[string]any, 1)
	}
	out["credentials"] = creds.RevealJSON()
	return out
}
