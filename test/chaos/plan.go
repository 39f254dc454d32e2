package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
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
	// (a new Nats-Msg-Id, so that the copy reaches a worker).
	Resends float64
	// SameIdentity is the share of request ids that ask for an identity an earlier id asked for.
	SameIdentity float64
	// Missing is the share of request ids whose secret does not exist: each must end in one
	// source_create_error and one dead letter.
	Missing float64
	Seed    int64
}

// connectorKind is a connector type the sandbox knows, with the credentials it needs.
type connectorKind struct {
	Type   string
	Fields []string
}

// kinds are the connector types the soak asks for: token and OAuth schemes.
var kinds = []connectorKind{
	{"github", []string{"token"}},
	{"gitlab", []string{"token"}},
	{"stripe", []string{"token"}},
	{"slack", []string{"token"}},
	{"notion", []string{"token"}},
	{"jira", []string{"token"}},
	{"hubspot", []string{"client_id", "client_secret", "refresh_token"}},
	{"salesforce", []string{"client_id", "client_secret", "refresh_token"}},
}

// Identity is what makes two requests ask for the same connector.
type Identity struct {
	Workspace, ConnectorType, Name string
}

func (id Identity) String() string {
	return fmt.Sprintf("%s/%s/%q", id.Workspace, id.ConnectorType, id.Name)
}

// Request is one distinct request id of the plan.
type Request struct {
	ID       string
	Identity Identity
	// SecretPath is the file reference's path below the secrets directory.
	SecretPath string
	// MissingSecret: SecretPath does not exist; the request must fail permanently.
	MissingSecret bool
}

// templateOf names the template to send with a connector type that has several at Airbyte (the
// sandbox's catalog has two for each of these), as Airbyte's own clients do: without one, create
// answers 422.
var templateOf = map[string]string{
	"jira":       "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e09",
	"salesforce": "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e04",
}

// Body is the credentials.submitted request as published.
func (r Request) Body(occurredAt time.Time) []byte {
	body := map[string]any{
		"id":                 r.ID,
		"workspace_name":     r.Identity.Workspace,
		"connector_type":     r.Identity.ConnectorType,
		"name":               r.Identity.Name,
		"credentials_ref":    "file:" + r.SecretPath,
		"replication_config": map[string]any{"start_date": "2026-01-01T00:00:00Z"},
		"occurred_at":        occurredAt.UTC().Format(time.RFC3339),
	}
	if id, ok := templateOf[r.Identity.ConnectorType]; ok {
		body["source_template_id"] = id
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
func NewPlan(cfg PlanConfig) (*Plan, error) {
	switch {
	case cfg.Requests < 1:
		return nil, fmt.Errorf("requests must be positive, got %d", cfg.Requests)
	case cfg.Workspaces < 1:
		return nil, fmt.Errorf("workspaces must be positive, got %d", cfg.Workspaces)
	case cfg.Resends < 0 || cfg.SameIdentity < 0 || cfg.SameIdentity > 1 || cfg.Missing < 0 || cfg.Missing > 1:
		return nil, fmt.Errorf("shares out of range: resends %v, same identity %v, missing %v", cfg.Resends, cfg.SameIdentity, cfg.Missing)
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x636861_6f73))
	p := &Plan{Secrets: map[string]map[string]string{}}
	workspaces := make([]string, cfg.Workspaces)
	for i := range workspaces {
		workspaces[i] = fmt.Sprintf("ws-%04d", i)
	}
	nextName := map[[2]string]int{}
	var reusable []int // indexes of requests whose identity may be asked for again
	for i := range cfg.Requests {
		r := Request{ID: fmt.Sprintf("req-%06d", i)}
		switch u := rng.Float64(); {
		case u < cfg.Missing:
			ws := workspaces[rng.IntN(len(workspaces))]
			k := kinds[rng.IntN(len(kinds))]
			r.Identity = Identity{Workspace: ws, ConnectorType: k.Type, Name: fmt.Sprintf("Missing %d", i)}
			r.SecretPath = fmt.Sprintf("customers/%s/missing-%d.json", ws, i)
			r.MissingSecret = true
		case u < cfg.Missing+cfg.SameIdentity && len(reusable) > 0:
			// half of them race with a recent request, the rest come back to an older identity
			var j int
			if rng.IntN(2) == 0 {
				j = reusable[max(0, len(reusable)-1-rng.IntN(64))]
			} else {
				j = reusable[rng.IntN(len(reusable))]
			}
			r.Identity, r.SecretPath = p.Requests[j].Identity, p.Requests[j].SecretPath
		default:
			ws := workspaces[rng.IntN(len(workspaces))]
			k := kinds[rng.IntN(len(kinds))]
			n := nextName[[2]string{ws, k.Type}] + 1
			nextName[[2]string{ws, k.Type}] = n
			r.Identity = Identity{Workspace: ws, ConnectorType: k.Type, Name: fmt.Sprintf("%s %d", k.Type, n)}
			r.SecretPath = fmt.Sprintf("customers/%s/%s.json", ws, k.Type)
			if _, ok := p.Secrets[r.SecretPath]; !ok {
				fields := map[string]string{}
				for _, f := range k.Fields {
					fields[f] = secretValue(cfg.Seed, r.SecretPath, f)
				}
				p.Secrets[r.SecretPath] = fields
			}
		}
		if !r.MissingSecret {
			reusable = append(reusable, i)
		}
		p.Requests = append(p.Requests, r)
	}

	// Every request is published at its own index; a resend follows its original within 32 sends,
	// so that the copies race while the original is still in flight or just done.
	type keyed struct {
		key  float64
		send Send
	}
	sends := make([]keyed, 0, cfg.Requests)
	copies := make([]int, cfg.Requests)
	for i, r := range p.Requests {
		sends = append(sends, keyed{float64(i), Send{Request: i, MsgID: r.ID + "#0"}})
	}
	// Missing-secret requests are not resent: each published copy of a failing request is
	// dead-lettered on its own, and the soak expects one dead letter per such request id.
	resends := int(math.Ceil(cfg.Resends * float64(cfg.Requests)))
	if resends > 0 && len(reusable) == 0 {
		return nil, fmt.Errorf("no request can be resent: every request has a missing secret")
	}
	for range resends {
		i := reusable[rng.IntN(len(reusable))]
		copies[i]++
		sends = append(sends, keyed{float64(i) + 0.5 + 32*rng.Float64(), Send{Request: i, Copy: copies[i], MsgID: fmt.Sprintf("%s#%d", p.Requests[i].ID, copies[i])}})
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

// PlanStats summarises a plan.
type PlanStats struct {
	Requests, Sends, Resends, SameIdentity, Missing, Identities int
}

// Stats counts what the plan holds.
func (p *Plan) Stats() PlanStats {
	st := PlanStats{Requests: len(p.Requests), Sends: len(p.Sends)}
	seen := map[Identity]bool{}
	for _, r := range p.Requests {
		switch {
		case r.MissingSecret:
			st.Missing++
		case seen[r.Identity]:
			st.SameIdentity++
		default:
			seen[r.Identity] = true
			st.Identities++
		}
	}
	for _, s := range p.Sends {
		if s.Copy > 0 {
			st.Resends++
		}
	}
	return st
}
