package airbyte

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const workspacesPath = "/api/v1/workspaces"

// maxWorkspacePages bounds how many pages ListWorkspaces follows: a server handing out next
// links forever must not keep a caller busy forever.
const maxWorkspacePages = 10_000

// ListWorkspaces lists the organization's workspaces matching p, every page: it follows each
// answer's next URL as it is (Airbyte's clients do the same) until a page has none, and returns
// them all in order. p.Limit is the page size. A next URL must point at this client's base URL
// and the workspaces path, or the bearer token would go elsewhere: any other is an error.
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
	cl := &call{op: "workspaces_list", method: http.MethodGet, path: workspacesPath, rawQuery: q.Encode(), auth: authOperator}
	all := &WorkspaceListResponse{Data: []WorkspaceListItem{}}
	seen := map[string]bool{}
	for pages := 1; ; pages++ {
		var page WorkspaceListResponse
		if err := c.do(ctx, cl, &page); err != nil {
			return nil, err
		}
		all.Data = append(all.Data, page.Data...)
		if page.Next == "" {
			return all, nil
		}
		if seen[page.Next] || pages >= maxWorkspacePages {
			return nil, fmt.Errorf("airbyte workspaces_list: next links do not end (after %d pages)", pages)
		}
		seen[page.Next] = true
		rawQuery, err := c.nextPage(page.Next)
		if err != nil {
			return nil, fmt.Errorf("airbyte workspaces_list: %w", err)
		}
		cl = &call{op: cl.op, method: cl.method, path: workspacesPath, rawQuery: rawQuery, auth: authOperator}
	}
}

// nextPage checks a next link (absolute, or relative to the base URL) and returns its query, to
// be sent as it is.
func (c *Client) nextPage(next string) (string, error) {
	u, err := url.Parse(next)
	if err != nil {
		return "", errors.New("next is not a URL")
	}
	u = c.base.ResolveReference(u)
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) ||
		strings.TrimRight(u.Path, "/") != strings.TrimRight(c.base.Path, "/")+workspacesPath {
		return "", errors.New("next points outside this API's workspaces")
	}
	return u.RawQuery, nil
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
