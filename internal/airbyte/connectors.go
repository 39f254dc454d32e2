package airbyte

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

const connectorsPath = "/api/v1/integrations/connectors"

// CreateConnector creates a connector in req.WorkspaceName, with the connector token
// (Config.ConnectorToken). The workspace's scoped token is minted first unless cached: the mint
// is what creates a missing workspace, and Airbyte may answer a create for a workspace that does
// not exist yet with 404.
//
// It is not idempotent and the API has no idempotency key: the client replays it only after a 429
// or a failure before the request was written. Any other failure (5xx, timeout, connection lost
// after writing) is returned with IsAmbiguous(err) == true and IsRetryable(err) == true: the
// connector may exist, so list and adopt by name before creating again.
func (c *Client) CreateConnector(ctx context.Context, req ConnectorSourceCreateRequest) (*ConnectorSourceCreateResponse, error) {
	if req.WorkspaceName == "" {
		return nil, errNoWorkspace
	}
	body, secrets, err := connectorBody(req)
	if err != nil {
		return nil, fmt.Errorf("airbyte connectors_create: %w", err)
	}
	cl := &call{op: "connectors_create", method: http.MethodPost, path: connectorsPath, body: body,
		auth: c.connectorAuth, workspace: req.WorkspaceName, createsResource: true, secrets: secrets}
	for ensured := false; ; ensured = true {
		// With the scoped style the bearer itself is the scoped token, so the call mints it.
		var ws *cachedToken
		if c.connectorAuth == authOperator {
			var err error
			if ws, err = c.scopedToken(ctx, req.WorkspaceName); err != nil {
				return nil, err
			}
		}
		var out ConnectorSourceCreateResponse
		err := c.do(ctx, cl, &out)
		// A 404 from a create with the application token: the workspace the cached scoped token
		// vouched for is gone (deleted since). Nothing was created, so mint again, which makes
		// the workspace, and create once more.
		var apiErr *APIError
		if !ensured && ws != nil && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			c.tokens.invalidate(req.WorkspaceName, ws.value.Reveal())
			continue
		}
		if err != nil {
			return nil, err
		}
		return &out, nil
	}
}

// ListConnectors lists the connectors of p.WorkspaceName, optionally of one definition.
func (c *Client) ListConnectors(ctx context.Context, p ListConnectorsParams) (*ConnectorSourceListResponse, error) {
	if p.WorkspaceName == "" {
		return nil, errNoWorkspace
	}
	q := url.Values{"workspace_name": {p.WorkspaceName}}
	if p.DefinitionID != "" {
		q.Set("definition_id", p.DefinitionID)
	}
	var out ConnectorSourceListResponse
	err := c.do(ctx, &call{op: "connectors_list", method: http.MethodGet, path: connectorsPath, query: q,
		auth: c.connectorAuth, workspace: p.WorkspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetConnector reads one connector of workspaceName.
func (c *Client) GetConnector(ctx context.Context, workspaceName, id string) (*ConnectorSourceGetResponse, error) {
	if err := checkScoped(workspaceName, id); err != nil {
		return nil, err
	}
	var out ConnectorSourceGetResponse
	err := c.do(ctx, &call{op: "connectors_get", method: http.MethodGet, path: connectorsPath + "/" + url.PathEscape(id),
		auth: c.connectorAuth, workspace: workspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateConnector changes a connector's name, replication config or entities (not its credentials).
func (c *Client) UpdateConnector(ctx context.Context, workspaceName, id string, req ConnectorSourceUpdateRequest) (*ConnectorSourceUpdateResponse, error) {
	if err := checkScoped(workspaceName, id); err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("airbyte connectors_update: %w", err)
	}
	var out ConnectorSourceUpdateResponse
	err = c.do(ctx, &call{op: "connectors_update", method: http.MethodPut, path: connectorsPath + "/" + url.PathEscape(id),
		body: body, auth: c.connectorAuth, workspace: workspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteConnector deletes a connector. Deletion is asynchronous: the connector may still be listed
// for a while after the 202.
func (c *Client) DeleteConnector(ctx context.Context, workspaceName, id string) (*ConnectorSourceDeleteAcceptedResponse, error) {
	if err := checkScoped(workspaceName, id); err != nil {
		return nil, err
	}
	var out ConnectorSourceDeleteAcceptedResponse
	err := c.do(ctx, &call{op: "connectors_delete", method: http.MethodDelete, path: connectorsPath + "/" + url.PathEscape(id),
		auth: c.connectorAuth, workspace: workspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CheckConnectorConfig tests a configuration, credentials included, without creating a connector.
// Create does not test credentials; this does.
func (c *Client) CheckConnectorConfig(ctx context.Context, req ConnectorSourceCheckConfigRequest) (*ConnectorSourceCheckConfigResponse, error) {
	if req.WorkspaceName == "" {
		return nil, errNoWorkspace
	}
	body, secrets, err := connectorBody(ConnectorSourceCreateRequest(req))
	if err != nil {
		return nil, fmt.Errorf("airbyte connectors_check: %w", err)
	}
	var out ConnectorSourceCheckConfigResponse
	err = c.do(ctx, &call{op: "connectors_check", method: http.MethodPost, path: connectorsPath + "/check", body: body,
		auth: c.connectorAuth, workspace: req.WorkspaceName, secrets: secrets}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CheckConnector tests an existing connector, optionally with changed settings.
func (c *Client) CheckConnector(ctx context.Context, workspaceName, id string, req ConnectorSourceCheckConfigUpdateRequest) (*ConnectorSourceCheckConfigResponse, error) {
	if err := checkScoped(workspaceName, id); err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("airbyte connectors_check: %w", err)
	}
	var out ConnectorSourceCheckConfigResponse
	err = c.do(ctx, &call{op: "connectors_check", method: http.MethodPost,
		path: connectorsPath + "/" + url.PathEscape(id) + "/check", body: body, auth: c.connectorAuth, workspace: workspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// connectorBody encodes req for the wire, with the credentials revealed under "credentials", and
// returns the credential values so that they can be scrubbed from whatever comes back.
func connectorBody(req ConnectorSourceCreateRequest) ([]byte, []string, error) {
	type plain ConnectorSourceCreateRequest // the same fields without methods
	var creds json.RawMessage
	if req.Credentials.Len() > 0 {
		creds = req.Credentials.RevealJSON()
	}
	body, err := json.Marshal(struct {
		plain
		Credentials json.RawMessage `json:"credentials,omitempty"` // shadows plain's json:"-" field
	}{plain(req), creds})
	if err != nil {
		return nil, nil, err
	}
	return body, revealValues(req.Credentials.RevealEach), nil
}

func revealValues(each func(func(name, value string))) []string {
	var vals []string
	each(func(_, v string) { vals = append(vals, v) })
	return vals
}

func checkScoped(workspaceName, id string) error {
	if workspaceName == "" {
		return errNoWorkspace
	}
	if id == "" {
		return errors.New("airbyte: id is required")
	}
	return nil
}
