package provision

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// record is what the ledger keeps of an applied request: enough to publish the same verdict again.
type record struct {
	Message       string              `json:"message"`
	WorkspaceID   string              `json:"workspace_id,omitempty"`
	Data          json.RawMessage     `json:"data,omitempty"`
	ReplacedID    string              `json:"replaced_id,omitempty"`
	AlreadyAbsent bool                `json:"already_absent,omitempty"`
	Error         *contract.ErrorBody `json:"error,omitempty"` // a verdict that changed nothing (superseded)
	Outcome       string              `json:"outcome,omitempty"`
}

func (rec record) marshal() json.RawMessage {
	b, _ := json.Marshal(rec) // a record always marshals
	return b
}

// progress is what an operation records in the ledger before each step whose effect outlives a
// crash, so that the next holder of the identity knows what may exist at Airbyte.
type progress struct {
	// CreateSent: a create may have reached Airbyte; CreateBy is the request whose create it was
	// (its connector holds that request's credentials).
	CreateSent bool   `json:"create_sent,omitempty"`
	CreateBy   string `json:"create_by,omitempty"`
	// NewConnector is a replace's new connector, recorded before the old one (Old) is deleted.
	NewConnector string `json:"new_connector,omitempty"`
	Old          string `json:"old,omitempty"`
	// Foreign is a connector made outside the provisioner (found by --lookup always) that this
	// identity's requests are giving their credentials: recorded before any call that changes it, so
	// the next holder finishes that instead of taking it for a connector of its own.
	Foreign string `json:"foreign,omitempty"`
	// DeleteBy: a disconnect by this request may have deleted the identity's connector; Deleted
	// are the connectors the ledger did not name whose delete by it Airbyte accepted.
	DeleteBy string   `json:"delete_by,omitempty"`
	Deleted  []string `json:"deleted,omitempty"`
}

func (p progress) marshal() json.RawMessage {
	b, _ := json.Marshal(p)
	return b
}

// pastConnectors lists the connectors the identity's history names — the current one, those earlier
// requests created, replaced or deleted. Airbyte deletes asynchronously and a list may still show a
// deleted connector for a while: after a create whose outcome is unknown, only a connector outside
// this history can be the one just created.
func pastConnectors(e ledger.Entry) map[string]bool {
	known := map[string]bool{}
	add := func(raw json.RawMessage) {
		var rec struct {
			Data struct {
				ID         string   `json:"id"`
				DeletedIDs []string `json:"deleted_ids"`
			} `json:"data"`
			ReplacedID string `json:"replaced_id"`
		}
		if len(raw) == 0 || json.Unmarshal(raw, &rec) != nil {
			return
		}
		for _, id := range append(rec.Data.DeletedIDs, rec.Data.ID, rec.ReplacedID) {
			if id != "" {
				known[id] = true
			}
		}
	}
	if e.Connector != "" {
		known[e.Connector] = true
	}
	add(e.Record)
	for _, a := range e.Recent {
		add(a.Record)
	}
	if p := progressOf(e.Progress); p.Old != "" {
		known[p.Old] = true
	}
	return known
}

func progressOf(raw json.RawMessage) progress {
	var p progress
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &p) // an unreadable progress is no progress: the lookup still runs
	}
	return p
}

// sourceData is the "data" of a source result: the widget's SourceRead, credentials redacted.
type sourceData struct {
	ID                string         `json:"id"`
	Name              string         `json:"name"`
	SourceTemplate    sourceTemplate `json:"source_template"`
	ReplicationConfig map[string]any `json:"replication_config"`
	CreatedAt         *time.Time     `json:"created_at,omitempty"`
	UpdatedAt         *time.Time     `json:"updated_at,omitempty"`
}

type sourceTemplate struct {
	ID                 string `json:"id,omitempty"`
	Name               string `json:"name,omitempty"`
	SourceDefinitionID string `json:"source_definition_id"`
	Mode               string `json:"mode,omitempty"`
}

// target is the identity a request names, as the Airbyte list describes connectors.
type target struct {
	Workspace        string
	ConnectorType    string
	DefinitionID     string
	SourceTemplateID string
	Name             string
}

func targetOf(r *contract.CredentialsSubmitted) target {
	return target{Workspace: r.WorkspaceName, ConnectorType: r.ConnectorType, DefinitionID: r.DefinitionID, SourceTemplateID: r.SourceTemplateID, Name: r.ConnectorName()}
}

// embedded reports whether the identity's connector is an embedded (template-based) source, whose
// credentials can be changed in place.
func (t target) embedded() bool { return t.SourceTemplateID != "" }

// matches lists the identity's connectors among the workspace's (same name, same kind), oldest
// first. Names are not unique at Airbyte, and a deleted connector may still be listed for a while.
func (s *Service) matches(ctx context.Context, t target) ([]airbyte.ConnectorSourceListItem, error) {
	list, err := s.airbyte.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: t.Workspace, DefinitionID: t.DefinitionID})
	if err != nil {
		return nil, err
	}
	var out []airbyte.ConnectorSourceListItem
	for _, c := range list.Data {
		if c.Name == t.Name && t.sameKind(c.SummarizedSourceTemplate) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b airbyte.ConnectorSourceListItem) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt.Time), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// sameKind compares what the list tells of a connector's kind with the request's.
func (t target) sameKind(st airbyte.SummarizedSourceTemplate) bool {
	switch {
	case t.ConnectorType != "":
		return st.Matches(t.ConnectorType)
	case t.DefinitionID != "":
		return strings.EqualFold(st.ActorDefinitionID, t.DefinitionID)
	default:
		return strings.EqualFold(st.ID, t.SourceTemplateID)
	}
}

// listedData is the result data of a connector known only from a list.
func listedData(c airbyte.ConnectorSourceListItem, replicationConfig json.RawMessage) *sourceData {
	t := c.SummarizedSourceTemplate
	return &sourceData{
		ID: c.ID, Name: c.Name,
		SourceTemplate:    sourceTemplate{ID: t.ID, Name: t.Name, SourceDefinitionID: t.ActorDefinitionID, Mode: t.Mode},
		ReplicationConfig: redactedConfig(replicationConfig, nil),
		CreatedAt:         timePtr(c.CreatedAt), UpdatedAt: timePtr(c.UpdatedAt),
	}
}

// createdData builds the result data from a create response, with every trace of the credentials
// replaced: the credentials key, and any value equal to a credential wherever Airbyte echoed it.
func createdData(resp *airbyte.ConnectorSourceCreateResponse, creds secret.Fields) *sourceData {
	return answeredData(resp.ID, resp.Name, resp.SourceTemplate, resp.ReplicationConfig, resp.CreatedAt, resp.UpdatedAt, creds)
}

// updatedData builds the result data from an embedded source's update response, redacted as
// createdData is.
func updatedData(resp *airbyte.SourceUpdateResponse, creds secret.Fields) *sourceData {
	return answeredData(resp.ID, resp.Name, resp.SourceTemplate, resp.SourceConfig, resp.CreatedAt, resp.UpdatedAt, creds)
}

// answeredData is the result data of a connector as Airbyte answered a create or an update, its
// configuration redacted of the credentials.
func answeredData(id, name string, t airbyte.DetailedSourceTemplate, config json.RawMessage, createdAt, updatedAt airbyte.Time, creds secret.Fields) *sourceData {
	return &sourceData{
		ID: id, Name: name,
		SourceTemplate:    sourceTemplate{ID: t.ID, Name: t.Name, SourceDefinitionID: t.SourceDefinitionID, Mode: t.Mode},
		ReplicationConfig: redactedConfig(config, secretValues(creds)),
		CreatedAt:         timePtr(createdAt), UpdatedAt: timePtr(updatedAt),
	}
}

func secretValues(creds secret.Fields) []string {
	var values []string
	creds.RevealEach(func(_, v string) { values = append(values, v) })
	return values
}

// redactedConfig is a replication_config fit for a result: the credentials key replaced, and any
// string holding one of the secrets scrubbed wherever it appears.
func redactedConfig(raw json.RawMessage, secrets []string) map[string]any {
	cfg := map[string]any{}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &cfg)
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	for k, v := range cfg {
		cfg[k] = scrub(v, secrets)
	}
	cfg["credentials"] = contract.RedactedCredentials
	return cfg
}

func scrub(v any, secrets []string) any {
	switch x := v.(type) {
	case string:
		for _, s := range secrets {
			if s != "" && strings.Contains(x, s) {
				return contract.RedactedCredentials
			}
		}
	case map[string]any:
		for k, e := range x {
			x[k] = scrub(e, secrets)
		}
	case []any:
		for i, e := range x {
			x[i] = scrub(e, secrets)
		}
	}
	return v
}

func replicationConfig(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func timePtr(t airbyte.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
