package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// PlanConfig shapes the requests of a soak.
type PlanConfig struct {
	// Requests is the number of distinct request ids.
	Requests int
	// Workspaces spreads the requests over this many workspaces.
	Workspaces int
	// Resends is the share of Requests that is published once more with the same request id
	// (a new Nats-Msg-Id, so that the copy reaches a worker): an app re-submitting a request.
	Resends float64
	// ExactDuplicates is the share of Requests published once more as the very same message (same
	// Nats-Msg-Id): the broker must drop the copy.
	ExactDuplicates float64
	// SameIdentity is the share of request ids that act on an identity an earlier id asked for: the
	// connector's life (lifecycle.go) — new credentials, the same ones again, a disconnect, a
	// re-connect after one.
	SameIdentity float64
	// Embedded is the share of new identities that are embedded (template-based) sources, whose
	// credentials are updated in place; the others are Agent Engine connectors, replaced.
	Embedded float64
	// Missing is the share of request ids whose secret does not exist: each must end in one
	// source_create_error and one dead letter.
	Missing float64
	Seed    int64
}

// connectorKind is a connector type the sandbox knows, with the credentials it needs and the
// sandbox's source template for it.
type connectorKind struct {
	Type     string
	Fields   []string
	Template string
	// Several: the sandbox has several templates of this type, so that a create by connector_type
	// is refused (source_template_id required); its identities are all embedded sources.
	Several bool
}

// kinds are the connector types the soak asks for: token and OAuth schemes.
var kinds = []connectorKind{
	{"github", []string{"token"}, "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e01", false},
	{"gitlab", []string{"token"}, "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e02", false},
	{"stripe", []string{"token"}, "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e05", false},
	{"slack", []string{"token"}, "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e07", false},
	{"notion", []string{"token"}, "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e08", false},
	{"jira", []string{"token"}, "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e09", true},
	{"hubspot", []string{"client_id", "client_secret", "refresh_token"}, "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e03", false},
	{"salesforce", []string{"client_id", "client_secret", "refresh_token"}, "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e04", true},
}

// Identity is what makes two requests ask for the same connector. Embedded sources are named
// apart from Agent Engine connectors ("embedded github 1"), so the three fields stay enough.
type Identity struct {
	Workspace, ConnectorType, Name string
}

func (id Identity) String() string {
	return fmt.Sprintf("%s/%s/%q", id.Workspace, id.ConnectorType, id.Name)
}

// Op is what a request asks of its identity.
type Op string

// Ops.
const (
	OpSubmit     Op = "submit"     // credentials.submitted: the connector should exist with these credentials
	OpDisconnect Op = "disconnect" // connector.disconnected: it should not exist
)

// Request is one distinct request id of the plan.
type Request struct {
	ID       string
	Op       Op
	Identity Identity
	// Template is the source template of an embedded source ("" for an Agent Engine connector).
	Template string
	// SecretPath is the file reference's path below the secrets directory (submits only).
	SecretPath string
	// MissingSecret: SecretPath does not exist; the request must fail permanently.
	MissingSecret bool
}

// Subject is the subject the request is published on.
func (r Request) Subject() string {
	if r.Op == OpDisconnect {
		return disconnectSubject
	}
	return requestSubject
}

// Body is the request as published.
func (r Request) Body(occurredAt time.Time) []byte {
	body := map[string]any{
		"id":             r.ID,
		"workspace_name": r.Identity.Workspace,
		"name":           r.Identity.Name,
		"occurred_at":    occurredAt.UTC().Format(time.RFC3339),
	}
	if r.Template != "" {
		body["source_template_id"] = r.Template
	} else {
		body["connector_type"] = r.Identity.ConnectorType
	}
	if r.Op == OpSubmit {
		body["credentials_ref"] = "file:" + r.SecretPath
		body["replication_config"] = map[string]any{"start_date": "2026-01-01T00:00:00Z"}
	}
	b, _ := json.Marshal(body)
	return b
}

// Send is one publish of the plan.
type Send struct {
	Request int // index into Plan.Requests
	// Copy is 0 for the first publish of a request id, 1.. for resends.
	Copy  int
	MsgID string
}

// Plan is everything the soak publishes, and the secrets the workers may read.
type Plan struct {
	Requests []Request
	Sends    []Send
	// Secrets maps a path below the secrets directory to the credential fields stored there.
	Secrets map[string]map[string]string
}

// NewPlan derives a plan from cfg; the same cfg gives the same plan.
//
// Every copy of a request id (resends and exact duplicates) is published before the next request
// id of its identity, so that the app's publish order per identity is the order of the distinct
// request ids, and the last one says what Airbyte must hold at the end.
func NewPlan(cfg PlanConfig) (*Plan, error) {
	switch {
	case cfg.Requests < 1:
		return nil, fmt.Errorf("requests must be positive, got %d", cfg.Requests)
	case cfg.Workspaces < 1:
		return nil, fmt.Errorf("workspaces must be positive, got %d", cfg.Workspaces)
	case cfg.Resends < 0 || cfg.ExactDuplicates < 0 || cfg.SameIdentity < 0 || cfg.SameIdentity > 1 ||
		cfg.Missing < 0 || cfg.Missing > 1 || cfg.Embedded < 0 || cfg.Embedded > 1:
		return nil, fmt.Errorf("shares out of range: resends %v, exact duplicates %v, same identity %v, embedded %v, missing %v",
			cfg.Resends, cfg.ExactDuplicates, cfg.SameIdentity, cfg.Embedded, cfg.Missing)
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x636861_6f73))
	p := &Plan{Secrets: map[string]map[string]string{}}
	workspaces := make([]string, cfg.Workspaces)
	for i := range workspaces {
		workspaces[i] = fmt.Sprintf("ws-%04d", i)
	}
	life := newLifecycle(cfg.Seed, p.Secrets)
	nextName := map[[2]string]int{}
	for i := range cfg.Requests {
		id := fmt.Sprintf("req-%06d", i)
		var r Request
		switch u := rng.Float64(); {
		case u < cfg.Missing:
			ws := workspaces[rng.IntN(len(workspaces))]
			k := kinds[rng.IntN(len(kinds))]
			r = Request{ID: id, Op: OpSubmit, Identity: Identity{Workspace: ws, ConnectorType: k.Type, Name: fmt.Sprintf("Missing %d", i)},
				SecretPath: fmt.Sprintf("customers/%s/missing-%d.json", ws, i), MissingSecret: true}
			if k.Several {
				r.Template = k.Template
			}
		case u < cfg.Missing+cfg.SameIdentity && life.canContinue():
			r = life.next(rng, id)
		default:
			ws := workspaces[rng.IntN(len(workspaces))]
			k := kinds[rng.IntN(len(kinds))]
			prefix, template := "", ""
			if rng.Float64() < cfg.Embedded || k.Several {
				prefix, template = "embedded ", k.Template
			}
			key := [2]string{ws, prefix + k.Type}
			nextName[key]++
			idy := Identity{Workspace: ws, ConnectorType: k.Type, Name: fmt.Sprintf("%s%s %d", prefix, k.Type, nextName[key])}
			r = life.start(id, idy, k, template)
		}
		p.Requests = append(p.Requests, r)
	}

	// Every request is published at its own index; a copy follows its original within 32 sends,
	// so that the copies race while the original is still in flight or just done, but always before
	// the next request id of the same identity.
	type keyed struct {
		key  float64
		send Send
	}
	sends := make([]keyed, 0, cfg.Requests)
	nextOfIdentity := make([]int, len(p.Requests))
	lastAt := map[Identity]int{}
	for i := len(p.Requests) - 1; i >= 0; i-- {
		nextOfIdentity[i] = len(p.Requests) + 32
		if j, ok := lastAt[p.Requests[i].Identity]; ok {
			nextOfIdentity[i] = j
		}
		lastAt[p.Requests[i].Identity] = i
	}
	var resendable []int
	for i, r := range p.Requests {
		sends = append(sends, keyed{float64(i), Send{Request: i, MsgID: r.ID + "#0"}})
		// Missing-secret requests are not resent: each published copy of a failing request is
		// dead-lettered on its own, and the soak expects one dead letter per such request id.
		if !r.MissingSecret {
			resendable = append(resendable, i)
		}
	}
	resends := int(math.Ceil(cfg.Resends * float64(cfg.Requests)))
	exact := int(math.Ceil(cfg.ExactDuplicates * float64(cfg.Requests)))
	if resends+exact > 0 && len(resendable) == 0 {
		return nil, fmt.Errorf("no request can be resent: every request has a missing secret")
	}
	copies := make([]int, cfg.Requests)
	for n := range resends + exact {
		i := resendable[rng.IntN(len(resendable))]
		s := Send{Request: i, MsgID: p.Requests[i].ID + "#0"}
		if n < resends {
			copies[i]++
			s.Copy, s.MsgID = copies[i], fmt.Sprintf("%s#%d", p.Requests[i].ID, copies[i])
		} else {
			s.Copy = -1 // the very same message again
		}
		gap := float64(min(32, nextOfIdentity[i]-i))
		sends = append(sends, keyed{float64(i) + gap*(0.05+0.9*rng.Float64()), s})
	}
	sort.SliceStable(sends, func(a, b int) bool { return sends[a].key < sends[b].key })
	p.Sends = make([]Send, len(sends))
	for i, k := range sends {
		p.Sends[i] = k.send
	}
	return p, nil
}

// secretValue is a made-up credential, distinctive enough to be searched for in logs.
func secretValue(seed int64, path, field string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s", seed, path, field))
	return "chaos-secret-" + hex.EncodeToString(sum[:12])
}

// SecretValues lists every credential value of the plan.
func (p *Plan) SecretValues() []string {
	var out []string
	for _, fields := range p.Secrets {
		for _, v := range fields {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// Workspaces are the workspaces the plan's requests name, sorted.
func (p *Plan) Workspaces() []string {
	set := map[string]bool{}
	for _, r := range p.Requests {
		set[r.Identity.Workspace] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// PlanStats summarises a plan.
type PlanStats struct {
	Requests, Sends, Resends, ExactDuplicates, SameIdentity, Missing, Identities int
	// Rotations are submits with new credentials for an identity asked for before; Resubmits are
	// new request ids with the credentials the identity's previous submit had.
	Rotations, Resubmits, Disconnects, Embedded int
}

// Stats counts what the plan holds.
func (p *Plan) Stats() PlanStats {
	st := PlanStats{Requests: len(p.Requests), Sends: len(p.Sends)}
	lastSecret := map[Identity]string{}
	seen := map[Identity]bool{}
	for _, r := range p.Requests {
		switch {
		case r.MissingSecret:
			st.Missing++
			continue
		case seen[r.Identity]:
			st.SameIdentity++
		default:
			seen[r.Identity] = true
			st.Identities++
			if r.Template != "" {
				st.Embedded++
			}
		}
		switch prev, ok := lastSecret[r.Identity]; {
		case r.Op == OpDisconnect:
			st.Disconnects++
		case ok && prev == r.SecretPath:
			st.Resubmits++
		case ok:
			st.Rotations++
		}
		if r.Op == OpSubmit {
			lastSecret[r.Identity] = r.SecretPath
		}
	}
	for _, s := range p.Sends {
		switch {
		case s.Copy > 0:
			st.Resends++
		case s.Copy < 0:
			st.ExactDuplicates++
		}
	}
	return st
}
