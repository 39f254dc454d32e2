package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewPlan(t *testing.T) {
	tests := []struct {
		name string
		cfg  PlanConfig
	}{
		{"soak defaults", PlanConfig{Requests: 2000, Workspaces: 40, Resends: 0.15, SameIdentity: 0.10, Missing: 0.02, Seed: 7}},
		{"one workspace", PlanConfig{Requests: 300, Workspaces: 1, Resends: 0.5, SameIdentity: 0.3, Missing: 0.1, Seed: 1}},
		{"no duplicates at all", PlanConfig{Requests: 100, Workspaces: 5, Seed: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlan(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := NewPlan(tt.cfg)
			if !reflect.DeepEqual(p, again) {
				t.Fatal("the same config gave two different plans")
			}
			st := p.Stats()
			if st.Requests != tt.cfg.Requests {
				t.Errorf("requests = %d, want %d", st.Requests, tt.cfg.Requests)
			}
			if min := int(tt.cfg.Resends * float64(tt.cfg.Requests)); st.Resends < min {
				t.Errorf("resends = %d, want at least %d", st.Resends, min)
			}
			if st.Sends != st.Requests+st.Resends {
				t.Errorf("sends = %d, want requests + resends = %d", st.Sends, st.Requests+st.Resends)
			}

			firstAt := map[int]int{}
			msgIDs := map[string]bool{}
			for i, s := range p.Sends {
				if msgIDs[s.MsgID] {
					t.Fatalf("msg id %s published twice: a retried publish could not be told from a resend", s.MsgID)
				}
				msgIDs[s.MsgID] = true
				r := p.Requests[s.Request]
				if s.Copy == 0 {
					firstAt[s.Request] = i
					continue
				}
				if r.MissingSecret {
					t.Errorf("%s has a missing secret but is resent", r.ID)
				}
				if at, ok := firstAt[s.Request]; !ok || at > i {
					t.Errorf("resend %s comes before its original", s.MsgID)
				}
			}
			if len(firstAt) != len(p.Requests) {
				t.Errorf("%d requests published, want %d", len(firstAt), len(p.Requests))
			}

			for _, r := range p.Requests {
				_, exists := p.Secrets[r.SecretPath]
				if exists == r.MissingSecret {
					t.Errorf("%s: secret %s exists=%t, missing=%t", r.ID, r.SecretPath, exists, r.MissingSecret)
				}
				if !strings.HasPrefix(r.SecretPath, "customers/"+r.Identity.Workspace+"/") {
					t.Errorf("%s: secret %s is outside its workspace's path", r.ID, r.SecretPath)
				}
				var body map[string]any
				if err := json.Unmarshal(r.Body(time.Unix(0, 0)), &body); err != nil {
					t.Fatal(err)
				}
				if body["id"] != r.ID || body["credentials_ref"] != "file:"+r.SecretPath || body["name"] != r.Identity.Name {
					t.Errorf("%s: body %v does not match the request", r.ID, body)
				}
			}
		})
	}
}

func TestNewPlanRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  PlanConfig
	}{
		{"no requests", PlanConfig{Requests: 0, Workspaces: 1}},
		{"no workspaces", PlanConfig{Requests: 1}},
		{"negative resends", PlanConfig{Requests: 1, Workspaces: 1, Resends: -1}},
		{"missing above one", PlanConfig{Requests: 1, Workspaces: 1, Missing: 2}},
		{"nothing to resend", PlanConfig{Requests: 5, Workspaces: 1, Missing: 1, Resends: 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPlan(tt.cfg); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		kills, restarts int
	}{{5, 1}, {0, 0}, {10, 2}, {1, 0}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d kills %d restarts", tt.kills, tt.restarts), func(t *testing.T) {
			var kills, restarts int
			last := 0.0
			for _, s := range schedule(tt.kills, tt.restarts) {
				if s.at < last || s.at <= 0 || s.at >= 1 {
					t.Errorf("step at %v out of order or outside (0, 1)", s.at)
				}
				last = s.at
				if s.restartNATS {
					restarts++
				} else {
					kills++
				}
			}
			if kills != tt.kills || restarts != tt.restarts {
				t.Errorf("%d kills, %d restarts", kills, restarts)
			}
		})
	}
}

// The lifecycle mix: disconnects and rotations of identities asked for earlier, each rotation with a
// secret of its own, and Last naming what Airbyte must end in.
func TestPlanLifecycleMix(t *testing.T) {
	p, err := NewPlan(PlanConfig{Requests: 3000, Workspaces: 20, Resends: 0.1, SameIdentity: 0.2, Rotations: 0.5, Disconnects: 0.1, Missing: 0.02, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Disconnects < 200 || st.Rotations < 200 || st.SameIdentity-st.Rotations < 200 {
		t.Fatalf("stats %+v: too few disconnects, rotations or plain resubmissions", st)
	}
	asked := map[Identity]bool{}
	finals := p.Finals()
	first, _ := p.Positions()
	latest := map[Identity]int{} // the request of each identity first published last
	for i, r := range p.Requests {
		switch {
		case r.Disconnect:
			if !asked[r.Identity] || r.SecretPath != "" {
				t.Fatalf("%s disconnects %s, which no earlier request asked for", r.ID, r.Identity)
			}
			if !strings.Contains(string(r.Body(time.Now())), `"connector_type"`) || r.Subject() != disconnectSubject {
				t.Fatalf("%s: body %s on %s", r.ID, r.Body(time.Now()), r.Subject())
			}
		case r.MissingSecret:
		default:
			fields, ok := p.Secrets[r.SecretPath]
			if !ok || len(fields) != len(kindOf(r.Identity.ConnectorType).Fields) {
				t.Fatalf("%s: secret %s has %v", r.ID, r.SecretPath, fields)
			}
			asked[r.Identity] = true
		}
		if j, ok := latest[r.Identity]; !r.MissingSecret && (!ok || first[j] < first[i]) {
			latest[r.Identity] = i
		}
	}
	for id, i := range latest {
		if !slices.Contains(finals[id], i) {
			t.Fatalf("%s: the request first published last (%s) is not among the finals %v", id, p.Requests[i].ID, finals[id])
		}
	}
}
