package airbyte

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

const workspacesPath = "/api/v1/workspaces"

// ListWorkspaces lists the organization's workspaces, one page at a time (p.Cursor = previous Next).
func (c *Client) ListWorkspaces(ctx context.Context, p WorkspaceListParams) (*WorkspaceListResponse, error) {
	q := url.Values{}
	if p.NameContains != "" {
		q.Set("name_contains", p.NameContains)
	}
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	var out WorkspaceListResponse
	err := c.do(ctx, &call{op: "workspaces_list", method: http.MethodGet, path: workspacesPath, query: q,
		auth: authOperator}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetWorkspace reads one workspace by id.
func (c *Client) GetWorkspace(ctx context.Context, id string) (*WorkspaceGetResponse, error) {
	if id == "" {
		return nil, errors.New("airbyte: id is required")
	}
	var out WorkspaceGetResponse
	err := c.do(ctx, &call{op: "workspaces_get", method: http.MethodGet, path: workspacesPath + "/" + url.PathEscape(id),
		auth: authOperator}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateWorkspace changes a workspace's name, status or cache setting (PUT /workspaces/{id}, with
// the application token). Setting Status to WorkspaceInactive makes Airbyte disable the
// workspace's connections; the workspace stays readable, with status "inactive".
func (c *Client) UpdateWorkspace(ctx context.Context, id string, req WorkspaceUpdateRequest) (*WorkspaceUpdateResponse, error) {
	if id == "" {
		return nil, errors.New("airbyte: id is required")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("airbyte workspaces_update: %w", err)
	}
	var out WorkspaceUpdateResponse
	err = c.do(ctx, &call{op: "workspaces_update", method: http.MethodPut, path: workspacesPath + "/" + url.PathEscape(id),
		body: body, auth: authOperator}, &out)
	if err != nil {
		return nil, err
	}
	if req.Name != "" {
		c.tokens.forgetWorkspace(id) // cached under the old name, which may now name another workspace
	}
	return &out, nil
}

// DeleteWorkspace deletes a workspace and everything in it (DELETE /workspaces/{id}, with the
// application token). Scoped tokens cached for it are useless afterwards; a later scoped-token
// mint of the same name creates a new workspace with a new id.
func (c *Client) DeleteWorkspace(ctx context.Context, id string) (*WorkspaceDeleteResponse, error) {
	if id == "" {
		return nil, errors.New("airbyte: id is required")
	}
	var out WorkspaceDeleteResponse
	err := c.do(ctx, &call{op: "workspaces_delete", method: http.MethodDelete, path: workspacesPath + "/" + url.PathEscape(id),
		auth: authOperator}, &out)
	if err != nil {
		return nil, err
	}
	c.tokens.forgetWorkspace(id)
	return &out, nil
}
