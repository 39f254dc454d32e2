package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewPlan(t *testing.T) {
	tests := []struct {
		name string
		cfg  PlanConfig
	}{
		{"soak defaults", PlanConfig{Requests: 2000, Workspaces: 40, Resends: 0.15, ExactDuplicates: 0.02, SameIdentity: 0.30, Embedded: 0.25, Missing: 0.02, Seed: 7}},
		{"one workspace", PlanConfig{Requests: 300, Workspaces: 1, Resends: 0.5, ExactDuplicates: 0.1, SameIdentity: 0.6, Embedded: 0.5, Missing: 0.1, Seed: 1}},
		{"no lifecycle, no duplicates", PlanConfig{Requests: 100, Workspaces: 5, Seed: 3}},
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
			if min := int(tt.cfg.ExactDuplicates * float64(tt.cfg.Requests)); st.ExactDuplicates < min {
				t.Errorf("exact duplicates = %d, want at least %d", st.ExactDuplicates, min)
			}
			if st.Sends != st.Requests+st.Resends+st.ExactDuplicates {
				t.Errorf("sends = %d, want requests + resends + exact duplicates = %d", st.Sends, st.Requests+st.Resends+st.ExactDuplicates)
			}
			if tt.cfg.SameIdentity > 0 && (st.Rotations == 0 || st.Resubmits == 0 || st.Disconnects == 0 || st.Embedded == 0) {
				t.Errorf("the lifecycle lacks a kind of request: %+v", st)
			}
			if tt.cfg.SameIdentity == 0 && st.SameIdentity+st.Disconnects > 0 {
				t.Errorf("no lifecycle asked for, got %+v", st)
			}

			firstAt := map[int]int{}
			msgIDs := map[string]bool{}
			lastSendOf := map[int]int{}
			for i, s := range p.Sends {
				r := p.Requests[s.Request]
				lastSendOf[s.Request] = i
				switch {
				case s.Copy < 0:
					if s.MsgID != r.ID+"#0" {
						t.Errorf("exact duplicate of %s has msg id %s", r.ID, s.MsgID)
					}
				case msgIDs[s.MsgID]:
					t.Fatalf("msg id %s published twice: a retried publish could not be told from a resend", s.MsgID)
				}
				msgIDs[s.MsgID] = true
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

			// per identity: a submit first, at most maxRequestsPerIdentity requests, and every copy
			// of a request published before the next request of its identity
			lastOf := map[Identity]int{}
			countOf := map[Identity]int{}
			for i, r := range p.Requests {
				j, seen := lastOf[r.Identity]
				if !seen && r.Op != OpSubmit {
					t.Errorf("%s: the first request of %s is a %s", r.ID, r.Identity, r.Op)
				}
				if seen && lastSendOf[j] > firstAt[i] {
					t.Errorf("a copy of %s is published after %s, the next request of %s", p.Requests[j].ID, r.ID, r.Identity)
				}
				if seen && (r.Template != p.Requests[j].Template) {
					t.Errorf("%s: %s changes kind", r.ID, r.Identity)
				}
				lastOf[r.Identity] = i
				if countOf[r.Identity]++; countOf[r.Identity] > maxRequestsPerIdentity {
					t.Errorf("%s has more than %d requests", r.Identity, maxRequestsPerIdentity)
				}
			}

			for _, r := range p.Requests {
				var body map[string]any
				if err := json.Unmarshal(r.Body(time.Unix(0, 0)), &body); err != nil {
					t.Fatal(err)
				}
				if body["id"] != r.ID || body["name"] != r.Identity.Name || body["workspace_name"] != r.Identity.Workspace {
					t.Errorf("%s: body %v does not match the request", r.ID, body)
				}
				if (r.Template != "") != (body["source_template_id"] != nil) || (r.Template == "") != (body["connector_type"] == r.Identity.ConnectorType) {
					t.Errorf("%s: body %v names the wrong kind", r.ID, body)
				}
				if r.Op == OpDisconnect {
					if r.Subject() != disconnectSubject || body["credentials_ref"] != nil {
						t.Errorf("%s: a disconnect on %s with body %v", r.ID, r.Subject(), body)
					}
					continue
				}
				_, exists := p.Secrets[r.SecretPath]
				if exists == r.MissingSecret {
					t.Errorf("%s: secret %s exists=%t, missing=%t", r.ID, r.SecretPath, exists, r.MissingSecret)
				}
				if !strings.HasPrefix(r.SecretPath, "customers/"+r.Identity.Workspace+"/") {
					t.Errorf("%s: secret %s is outside its workspace's path", r.ID, r.SecretPath)
				}
				if r.Subject() != requestSubject || body["credentials_ref"] != "file:"+r.SecretPath {
					t.Errorf("%s: a submit on %s with body %v", r.ID, r.Subject(), body)
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
