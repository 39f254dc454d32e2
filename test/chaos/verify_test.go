package main

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	idGitHub = Identity{Workspace: "ws-0000", ConnectorType: "github", Name: "github 1"}
	idStripe = Identity{Workspace: "ws-0001", ConnectorType: "stripe", Name: "embedded stripe 1"}
	idSlack  = Identity{Workspace: "ws-0001", ConnectorType: "slack", Name: "slack 1"}
	idLost   = Identity{Workspace: "ws-0001", ConnectorType: "slack", Name: "Missing 3"}
)

// fixture is a small plan and the observation of a run that kept every guarantee: a GitHub
// connector rotated (replaced), disconnected and connected again; an embedded Stripe source
// updated in place, with a re-submit superseded by the rotation published after it; a Slack
// connector created and disconnected; a request whose secret is missing.
func fixture() (*Plan, Observation) {
	p := &Plan{
		Requests: []Request{
			{ID: "req-a", Op: OpSubmit, Identity: idGitHub, SecretPath: "customers/ws-0000/github-1.json"},
			{ID: "req-b", Op: OpSubmit, Identity: idGitHub, SecretPath: "customers/ws-0000/github-2.json"},
			{ID: "req-c", Op: OpSubmit, Identity: idStripe, Template: "t-stripe", SecretPath: "customers/ws-0001/stripe-1.json"},
			{ID: "req-d", Op: OpDisconnect, Identity: idGitHub},
			{ID: "req-x", Op: OpSubmit, Identity: idStripe, Template: "t-stripe", SecretPath: "customers/ws-0001/stripe-1.json"},
			{ID: "req-e", Op: OpSubmit, Identity: idGitHub, SecretPath: "customers/ws-0000/github-3.json"},
			{ID: "req-f", Op: OpSubmit, Identity: idStripe, Template: "t-stripe", SecretPath: "customers/ws-0001/stripe-2.json"},
			{ID: "req-h", Op: OpSubmit, Identity: idSlack, SecretPath: "customers/ws-0001/slack-1.json"},
			{ID: "req-i", Op: OpDisconnect, Identity: idSlack},
			{ID: "req-m", Op: OpSubmit, Identity: idLost, SecretPath: "customers/ws-0001/missing-3.json", MissingSecret: true},
		},
		Secrets: map[string]map[string]string{
			"customers/ws-0000/github-1.json": {"token": "g1"},
			"customers/ws-0000/github-2.json": {"token": "g2"},
			"customers/ws-0000/github-3.json": {"token": "g3"},
			"customers/ws-0001/stripe-1.json": {"token": "s1"},
			"customers/ws-0001/stripe-2.json": {"token": "s2"},
			"customers/ws-0001/slack-1.json":  {"token": "k1"},
		},
	}
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	o := Observation{
		Connectors: []Connector{
			{ID: "conn-3", Identity: idGitHub, CreatedAt: t0, CredentialsSHA256: credentialsSHA256(map[string]string{"token": "g3"})},
			{ID: "conn-4", Identity: idStripe, CreatedAt: t0, CredentialsSHA256: credentialsSHA256(map[string]string{"token": "s2"})},
		},
		Results: []Result{
			{Seq: 1, RequestID: "req-a", Message: "source_created", ConnectorID: "conn-1", Attempts: 1, Stored: t0},
			{Seq: 2, RequestID: "req-b", Message: "source_updated", ConnectorID: "conn-2", ReplacedID: "conn-1", Attempts: 2, Stored: t0},
			{Seq: 3, RequestID: "req-c", Message: "source_created", ConnectorID: "conn-4", Attempts: 1, Stored: t0},
			{Seq: 4, RequestID: "req-d", Message: "source_deleted", ConnectorID: "conn-2", DeletedIDs: []string{"conn-2"}, Attempts: 1, Stored: t0},
			{Seq: 5, RequestID: "req-f", Message: "source_updated", ConnectorID: "conn-4", Attempts: 1, Stored: t0},
			{Seq: 6, RequestID: "req-x", Message: "source_update_error", ErrorCode: "superseded",
				ErrorMessage: "superseded by request req-f, applied after this one was published", Attempts: 1, Stored: t0},
			{Seq: 7, RequestID: "req-e", Message: "source_created", ConnectorID: "conn-3", Attempts: 1, Stored: t0},
			{Seq: 8, RequestID: "req-h", Message: "source_created", ConnectorID: "conn-5", Attempts: 1, Stored: t0},
			{Seq: 9, RequestID: "req-i", Message: "source_deleted", ConnectorID: "conn-5", DeletedIDs: []string{"conn-5"}, Attempts: 1, Stored: t0},
			{Seq: 10, RequestID: "req-m", Message: "source_create_error", ErrorCode: "secret_not_found", Attempts: 1, Stored: t0},
		},
		DeadLetters:   []DeadLetter{{Seq: 1, RequestID: "req-m", Reason: "secret_not_found", Deliveries: "1"}},
		StoredResults: 10,
		Held: map[string]Held{
			"conn-1": held(idGitHub, "g1"),
			"conn-2": held(idGitHub, "g2"),
			"conn-3": held(idGitHub, "g3"),
			"conn-4": held(idStripe, "s1", "s2"),
			"conn-5": held(idSlack, "k1"),
		},
	}
	return p, o
}

// held is a connector of the history that held these tokens, one after the other.
func held(id Identity, tokens ...string) Held {
	h := Held{Identity: id, Credentials: map[string]bool{}}
	for _, tok := range tokens {
		h.Credentials[credentialsSHA256(map[string]string{"token": tok})] = true
	}
	return h
}

func addResult(o *Observation, r Result) {
	r.Seq = uint64(len(o.Results) + 1)
	o.Results = append(o.Results, r)
	o.StoredResults++
}

// result returns the fixture's result for a request id, to be changed in place.
func result(o *Observation, id string) *Result {
	for i := range o.Results {
		if o.Results[i].RequestID == id {
			return &o.Results[i]
		}
	}
	panic("no result for " + id)
}

func TestVerify(t *testing.T) {
	// ok is the fixture's report; each case states how its own differs.
	ok := Report{Requests: 10, Identities: 2, Connectors: 2, Results: 10, DeadLetters: 1, ExpectedDeadLetters: 1, Superseded: 1}
	with := func(f func(*Report)) Report { r := ok; f(&r); return r }
	tests := []struct {
		name   string
		mutate func(*Observation)
		want   Report // the counters only
		// problems and suspects expected (substrings / exact ids)
		problems []string
		suspects []string
	}{
		{
			name: "every guarantee held",
			want: ok,
		},
		{
			name: "a second connector for an identity",
			mutate: func(o *Observation) {
				o.Connectors = append(o.Connectors, Connector{ID: "conn-9", Identity: idGitHub, CredentialsSHA256: o.Connectors[0].CredentialsSHA256})
			},
			want:     with(func(r *Report) { r.Connectors, r.Duplicates, r.FinalStateMismatches = 3, 1, 1 }),
			problems: []string{`duplicate connectors for ws-0000/github/"github 1": conn-3`, "connectors [conn-3 conn-9], but its last applied request req-e says only conn-3"},
			suspects: []string{"req-a", "req-e"},
		},
		{
			name:     "a request without a result",
			mutate:   func(o *Observation) { o.Results = slices.Delete(o.Results, 2, 3); o.StoredResults-- },
			want:     with(func(r *Report) { r.Results, r.MissingResults = 9, 1 }),
			problems: []string{"1 request(s) without a result: req-c"},
			suspects: []string{"req-c"},
		},
		{
			name: "the same result stored twice",
			mutate: func(o *Observation) {
				addResult(o, Result{RequestID: "req-a", Message: "source_created", ConnectorID: "conn-1"})
			},
			want:     with(func(r *Report) { r.ExtraResults = 1 }),
			problems: []string{"2 results for req-a"},
			suspects: []string{"req-a"},
		},
		{
			name: "a success and a failure for one request id",
			mutate: func(o *Observation) {
				addResult(o, Result{RequestID: "req-c", Message: "source_create_error", ErrorCode: "airbyte_unavailable", Retryable: true})
			},
			want:     with(func(r *Report) { r.ExtraResults = 1 }),
			problems: []string{"2 results for req-c"},
			suspects: []string{"req-c"},
		},
		{
			name:     "a result for a request never published",
			mutate:   func(o *Observation) { addResult(o, Result{RequestID: "req-zzz", Message: "source_created"}) },
			want:     with(func(r *Report) { r.ExtraResults = 1 }),
			problems: []string{"never published: req-zzz"},
		},
		{
			name:   "a create naming a connector the sandbox never held",
			mutate: func(o *Observation) { result(o, "req-h").ConnectorID = "conn-7" },
			want:   with(func(r *Report) { r.WrongResults = 3 }),
			problems: []string{"req-h: source_created names connector conn-7, which the sandbox never held",
				"req-h: source_created names connector conn-7, which the sandbox does not hold and no later verdict removed",
				`req-i: source_deleted [conn-5], but ws-0001/slack/"slack 1"'s connector was conn-7 (from req-h)`},
			suspects: []string{"req-h", "req-i"},
		},
		{
			name:   "a create naming another identity's connector",
			mutate: func(o *Observation) { result(o, "req-e").ConnectorID = "conn-4" },
			want:   with(func(r *Report) { r.WrongResults, r.FinalStateMismatches = 2, 1 }),
			problems: []string{`req-e: source_created names connector conn-4, which the sandbox held for ws-0001/stripe/"embedded stripe 1"`,
				`req-e: source_created names connector conn-4, which the sandbox holds for ws-0001/stripe/"embedded stripe 1"`, "connector conn-3, but its last applied request req-e says conn-4"},
			suspects: []string{"req-e"},
		},
		{
			name: "a rotation reported as a create",
			mutate: func(o *Observation) {
				r := result(o, "req-b")
				r.Message, r.ReplacedID = "source_created", ""
			},
			want: with(func(r *Report) { r.WrongResults = 2 }),
			problems: []string{`req-b: source_created conn-2, but ws-0000/github/"github 1" had connector conn-1 (from req-a): want source_updated`,
				"req-a: source_created names connector conn-1, which the sandbox does not hold and no later verdict removed"},
			suspects: []string{"req-a", "req-b"},
		},
		{
			name:     "an update that neither updates nor replaces the connector",
			mutate:   func(o *Observation) { result(o, "req-f").ConnectorID = "conn-8" },
			want:     with(func(r *Report) { r.WrongResults, r.FinalStateMismatches = 3, 1 }),
			problems: []string{"req-f: source_updated conn-8 (replaced \"\") neither updates nor replaces", "req-f: source_updated names connector conn-8, which the sandbox does not hold", "req-f: source_updated names connector conn-8, which the sandbox never held"},
			suspects: []string{"req-f"},
		},
		{
			name:     "a rotation that never reached Airbyte, replaced since",
			mutate:   func(o *Observation) { o.Held["conn-2"] = held(idGitHub, "g1") },
			want:     with(func(r *Report) { r.WrongResults = 1 }),
			problems: []string{"req-b: source_updated names connector conn-2, which never held the credentials of customers/ws-0000/github-2.json"},
			suspects: []string{"req-b"},
		},
		{
			name:     "an in-place update's first credentials never at Airbyte",
			mutate:   func(o *Observation) { o.Held["conn-4"] = held(idStripe, "s2") },
			want:     with(func(r *Report) { r.WrongResults = 1 }),
			problems: []string{"req-c: source_created names connector conn-4, which never held the credentials of customers/ws-0001/stripe-1.json"},
			suspects: []string{"req-c"},
		},
		{
			name:   "without a history only the end is checked",
			mutate: func(o *Observation) { o.Held = nil },
			want:   ok,
		},
		{
			name: "a replaced connector still listed",
			mutate: func(o *Observation) {
				o.Connectors = append(o.Connectors, Connector{ID: "conn-1", Identity: idGitHub, CredentialsSHA256: credentialsSHA256(map[string]string{"token": "g1"})})
			},
			want:     with(func(r *Report) { r.Connectors, r.Duplicates, r.WrongResults, r.FinalStateMismatches = 3, 1, 1, 1 }),
			problems: []string{"req-b: source_updated replaced conn-1, but the sandbox still lists it"},
			suspects: []string{"req-b"},
		},
		{
			name: "a delete while the sandbox still lists the connector",
			mutate: func(o *Observation) {
				o.Connectors = append(o.Connectors, Connector{ID: "conn-5", Identity: idSlack, CredentialsSHA256: credentialsSHA256(map[string]string{"token": "k1"})})
			},
			want:     with(func(r *Report) { r.Connectors, r.WrongResults, r.FinalStateMismatches = 3, 1, 1 }),
			problems: []string{"req-i: source_deleted conn-5, but the sandbox still lists it", `final state of ws-0001/slack/"slack 1": connector(s) [conn-5], but its last applied request says none`},
			suspects: []string{"req-h", "req-i"},
		},
		{
			name: "a disconnect that did not delete the connector",
			mutate: func(o *Observation) {
				r := result(o, "req-d")
				r.DeletedIDs, r.AlreadyAbsent, r.ConnectorID = []string{}, true, ""
			},
			want: with(func(r *Report) { r.WrongResults = 2 }),
			problems: []string{`req-d: source_deleted [], but ws-0000/github/"github 1"'s connector was conn-2 (from req-b)`,
				"req-b: source_updated names connector conn-2, which the sandbox does not hold and no later verdict removed"},
			suspects: []string{"req-b", "req-d"},
		},
		{
			name: "old credentials at the end",
			mutate: func(o *Observation) {
				o.Connectors[0].CredentialsSHA256 = credentialsSHA256(map[string]string{"token": "g2"})
			},
			want:     with(func(r *Report) { r.FinalStateMismatches = 1 }),
			problems: []string{"connector conn-3 holds credentials_sha256", "its last applied request req-e submitted customers/ws-0000/github-3.json"},
			suspects: []string{"req-a", "req-b", "req-d", "req-e"},
		},
		{
			name: "an embedded source never updated",
			mutate: func(o *Observation) {
				o.Connectors[1].CredentialsSHA256 = credentialsSHA256(map[string]string{"token": "s1"})
			},
			want:     with(func(r *Report) { r.FinalStateMismatches = 1 }),
			problems: []string{"connector conn-4 holds credentials_sha256", "req-f submitted customers/ws-0001/stripe-2.json"},
			suspects: []string{"req-c", "req-x", "req-f"},
		},
		{
			name:     "a connector missing at the end",
			mutate:   func(o *Observation) { o.Connectors = o.Connectors[1:] },
			want:     with(func(r *Report) { r.Connectors, r.WrongResults, r.FinalStateMismatches = 1, 1, 1 }),
			problems: []string{`final state of ws-0000/github/"github 1": no connector, but its last applied request req-e says conn-3`},
			suspects: []string{"req-e"},
		},
		{
			name: "the last request superseded",
			mutate: func(o *Observation) {
				r := result(o, "req-i")
				*r = Result{Seq: r.Seq, RequestID: "req-i", Message: "source_delete_error", ErrorCode: "superseded", ErrorMessage: "superseded by request req-h"}
			},
			want: with(func(r *Report) { r.Superseded, r.WrongResults, r.FinalStateMismatches = 2, 2, 1 }),
			problems: []string{`req-i: superseded, but it is the last request of ws-0001/slack/"slack 1"`,
				`final state of ws-0001/slack/"slack 1": no connector, but its last applied request req-h says conn-5`},
			suspects: []string{"req-h", "req-i"},
		},
		{
			name:     "superseded by an older request",
			mutate:   func(o *Observation) { result(o, "req-x").ErrorMessage = "superseded by request req-c" },
			want:     with(func(r *Report) { r.WrongResults = 1 }),
			problems: []string{`req-x: superseded by none of the newer requests`},
			suspects: []string{"req-x"},
		},
		{
			name:     "superseded and retryable",
			mutate:   func(o *Observation) { result(o, "req-x").Retryable = true },
			want:     with(func(r *Report) { r.WrongResults = 1 }),
			problems: []string{"req-x: superseded marked retryable"},
		},
		{
			name: "a request that failed for good",
			mutate: func(o *Observation) {
				r := result(o, "req-e")
				*r = Result{Seq: r.Seq, RequestID: "req-e", Message: "source_create_error", ErrorCode: "airbyte_unavailable", Retryable: true, Attempts: 10}
			},
			want: with(func(r *Report) { r.WrongResults, r.FinalStateMismatches = 1, 1 }),
			problems: []string{`req-e: result source_create_error (code "airbyte_unavailable", retryable true, attempts 10), want a success or superseded`,
				`final state of ws-0000/github/"github 1": connector(s) [conn-3], but its last applied request says none`},
			suspects: []string{"req-e"},
		},
		{
			name: "a missing secret that did not fail",
			mutate: func(o *Observation) {
				*result(o, "req-m") = Result{Seq: 10, RequestID: "req-m", Message: "source_created", ConnectorID: "conn-6"}
			},
			want:     with(func(r *Report) { r.WrongResults = 1 }),
			problems: []string{"req-m: result source_created", "want source_create_error with secret_not_found"},
			suspects: []string{"req-m"},
		},
		{
			name: "an unexpected dead letter",
			mutate: func(o *Observation) {
				o.DeadLetters = append(o.DeadLetters, DeadLetter{Seq: 2, RequestID: "req-c", Reason: "airbyte_unavailable"})
			},
			want:     with(func(r *Report) { r.DeadLetters = 2 }),
			problems: []string{`unexpected dead letter(s) for "req-c"`},
			suspects: []string{"req-c"},
		},
		{
			name:     "a missing secret not dead-lettered",
			mutate:   func(o *Observation) { o.DeadLetters = nil },
			want:     with(func(r *Report) { r.DeadLetters = 0 }),
			problems: []string{"were not dead-lettered: req-m"},
			suspects: []string{"req-m"},
		},
		{
			name:     "a missing secret dead-lettered twice",
			mutate:   func(o *Observation) { o.DeadLetters = append(o.DeadLetters, o.DeadLetters[0]) },
			want:     with(func(r *Report) { r.DeadLetters = 2 }),
			problems: []string{"2 dead letters for req-m"},
			suspects: []string{"req-m"},
		},
		{
			name:     "requests still pending",
			mutate:   func(o *Observation) { o.Pending = 3 },
			want:     with(func(r *Report) { r.Pending = 3 }),
			problems: []string{"3 request(s) still pending"},
		},
		{
			name:     "requests stranded past max deliver",
			mutate:   func(o *Observation) { o.Stranded = 2 },
			want:     ok,
			problems: []string{"2 request(s) left in the requests stream"},
		},
		{
			name:     "a connector for a request whose secret is missing",
			mutate:   func(o *Observation) { o.Connectors = append(o.Connectors, Connector{ID: "conn-9", Identity: idLost}) },
			want:     with(func(r *Report) { r.Connectors = 3 }),
			problems: []string{"whose secret is missing"},
			suspects: []string{"req-m"},
		},
		{
			name:     "results stored but not read",
			mutate:   func(o *Observation) { o.StoredResults = 11 },
			want:     ok,
			problems: []string{"holds 11 messages but 10 were read"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, o := fixture()
			if tt.mutate != nil {
				tt.mutate(&o)
			}
			got := Verify(p, o)
			problems, suspects := got.Problems, got.Suspects
			got.Problems, got.Suspects = nil, nil
			if got.Line() != tt.want.Line() {
				t.Errorf("line\n got %s\nwant %s", got.Line(), tt.want.Line())
			}
			for _, want := range tt.problems {
				if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
					t.Errorf("no problem mentions %q; problems: %q", want, problems)
				}
			}
			if len(tt.problems) == 0 && len(problems) > 0 {
				t.Errorf("unexpected problems: %q", problems)
			}
			for _, id := range tt.suspects {
				if !slices.Contains(suspects, id) {
					t.Errorf("suspects %q lack %s", suspects, id)
				}
			}
			got.Problems = problems
			if wantOK := len(tt.problems) == 0; got.OK() != wantOK {
				t.Errorf("OK() = %t, want %t; problems: %q", got.OK(), wantOK, problems)
			}
		})
	}
}

// TestReportGolden pins the line's format (CI and humans grep it) and the problems' wording.
func TestReportGolden(t *testing.T) {
	p, o := fixture()
	o.Connectors = append(o.Connectors, Connector{ID: "conn-9", Identity: idGitHub, CreatedAt: time.Date(2026, 11, 21, 10, 0, 1, 0, time.UTC)})
	o.Results = o.Results[1:]
	o.StoredResults--
	result(&o, "req-f").ConnectorID = "conn-8"
	addResult(&o, Result{RequestID: "req-c", Message: "source_create_error", ErrorCode: "lease_unavailable", Retryable: true, Attempts: 10, Stored: time.Date(2026, 11, 21, 10, 2, 0, 0, time.UTC)})
	o.Pending = 1
	rep := Verify(p, o)
	var b strings.Builder
	for _, pr := range rep.Problems {
		b.WriteString("- " + pr + "\n")
	}
	b.WriteString("suspects: " + strings.Join(rep.Suspects, " ") + "\n")
	b.WriteString(rep.Line() + "\n")

	golden := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("report differs from %s (go test -run TestReportGolden -update)\n got:\n%s\nwant:\n%s", golden, b.String(), want)
	}
}
