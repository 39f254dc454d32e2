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
	idStripe = Identity{Workspace: "ws-0001", ConnectorType: "stripe", Name: "stripe 1"}
	idLost   = Identity{Workspace: "ws-0001", ConnectorType: "slack", Name: "Missing 3"}
)

// fixture is a small plan and the observation of a run that kept every guarantee.
func fixture() (*Plan, Observation) {
	p := &Plan{Requests: []Request{
		{ID: "req-a", Identity: idGitHub, SecretPath: "customers/ws-0000/github.json"},
		{ID: "req-b", Identity: idGitHub, SecretPath: "customers/ws-0000/github-rotated-1.json"},
		{ID: "req-c", Identity: idStripe, SecretPath: "customers/ws-0001/stripe.json"},
		{ID: "req-m", Identity: idLost, SecretPath: "customers/ws-0001/missing-3.json", MissingSecret: true},
	}, Secrets: map[string]map[string]string{
		"customers/ws-0000/github.json":           {"token": "one"},
		"customers/ws-0000/github-rotated-1.json": {"token": "two"},
		"customers/ws-0001/stripe.json":           {"token": "three"},
	}}
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	o := Observation{
		Connectors: []Connector{
			{ID: "conn-1", Identity: idGitHub, CreatedAt: t0, CredentialsSHA256: credentialsSHA256(map[string]string{"token": "two"})},
			{ID: "conn-2", Identity: idStripe, CreatedAt: t0, CredentialsSHA256: credentialsSHA256(map[string]string{"token": "three"})},
		},
		Results: []Result{
			{Seq: 1, RequestID: "req-a", Message: "source_created", ConnectorID: "conn-0", Attempts: 1, Stored: t0},
			{Seq: 2, RequestID: "req-b", Message: "source_updated", ConnectorID: "conn-1", Attempts: 2, Stored: t0},
			{Seq: 3, RequestID: "req-c", Message: "source_created", ConnectorID: "conn-2", Attempts: 1, Stored: t0},
			{Seq: 4, RequestID: "req-m", Message: "source_create_error", ErrorCode: "secret_not_found", Attempts: 1, Stored: t0},
		},
		DeadLetters:   []DeadLetter{{Seq: 1, RequestID: "req-m", Reason: "secret_not_found", Deliveries: "1"}},
		StoredResults: 4,
	}
	return p, o
}

func addResult(o *Observation, r Result) {
	r.Seq = uint64(len(o.Results) + 1)
	o.Results = append(o.Results, r)
	o.StoredResults++
}

func TestVerify(t *testing.T) {
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
			want: Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
		},
		{
			name: "a second connector for an identity",
			mutate: func(o *Observation) {
				o.Connectors = append(o.Connectors, Connector{ID: "conn-3", Identity: idGitHub})
			},
			want:     Report{Requests: 4, Identities: 2, Connectors: 3, Duplicates: 1, FinalStateMismatches: 1, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"duplicate connectors for ws-0000/github/\"github 1\": conn-1"},
			suspects: []string{"req-a", "req-b"},
		},
		{
			name:     "a request without a result",
			mutate:   func(o *Observation) { o.Results = slices.Delete(o.Results, 2, 3); o.StoredResults-- },
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 3, MissingResults: 1, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"1 request(s) without a result: req-c"},
			suspects: []string{"req-c"},
		},
		{
			name: "the same result stored twice",
			mutate: func(o *Observation) {
				addResult(o, Result{RequestID: "req-a", Message: "source_created", ConnectorID: "conn-1"})
			},
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, ExtraResults: 1, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"2 results for req-a"},
			suspects: []string{"req-a"},
		},
		{
			name: "a success and a failure for one request id",
			mutate: func(o *Observation) {
				addResult(o, Result{RequestID: "req-c", Message: "source_create_error", ErrorCode: "airbyte_unavailable", Retryable: true})
			},
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, ExtraResults: 1, WrongResults: 1, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"2 results for req-c", "want source_created"},
			suspects: []string{"req-c"},
		},
		{
			name:     "a result for a request never published",
			mutate:   func(o *Observation) { addResult(o, Result{RequestID: "req-zzz", Message: "source_created"}) },
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, ExtraResults: 1, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"never published: req-zzz"},
		},
		{
			name:     "a result naming another connector",
			mutate:   func(o *Observation) { o.Results[1].ConnectorID = "conn-2" },
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, WrongResults: 1, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"req-b: source_updated names connector conn-2"},
			suspects: []string{"req-b"},
		},
		{
			name: "the connector holds the credentials of an earlier request",
			mutate: func(o *Observation) {
				o.Connectors[0].CredentialsSHA256 = credentialsSHA256(map[string]string{"token": "one"})
			},
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, FinalStateMismatches: 1, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"does not hold the credentials of its last request (req-b)"},
			suspects: []string{"req-a", "req-b"},
		},
		{
			name: "an older request superseded by a newer one",
			mutate: func(o *Observation) {
				o.Results[0] = Result{Seq: 1, RequestID: "req-a", Message: "source_create_error", ErrorCode: "superseded", ErrorText: "superseded by request req-b, applied after this one was published"}
			},
			want: Report{Requests: 4, Identities: 2, Connectors: 2, Superseded: 1, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
		},
		{
			name: "the last request superseded",
			mutate: func(o *Observation) {
				o.Results[1] = Result{Seq: 2, RequestID: "req-b", Message: "source_update_error", ErrorCode: "superseded", ErrorText: "superseded by request req-a, applied after this one was published"}
			},
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Superseded: 1, WrongResults: 1, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"no request for ws-0000/github/\"github 1\" was published after it"},
			suspects: []string{"req-b"},
		},
		{
			name: "a request superseded by an older one",
			mutate: func(o *Observation) {
				o.Results[0] = Result{Seq: 1, RequestID: "req-a", Message: "source_create_error", ErrorCode: "superseded", ErrorText: "superseded by request req-c, applied after this one was published"}
			},
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Superseded: 1, WrongResults: 1, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{`superseded by "req-c"`},
			suspects: []string{"req-a"},
		},
		{
			name: "an unexpected dead letter",
			mutate: func(o *Observation) {
				o.DeadLetters = append(o.DeadLetters, DeadLetter{Seq: 2, RequestID: "req-c", Reason: "airbyte_unavailable"})
			},
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, DeadLetters: 2, ExpectedDeadLetters: 1},
			problems: []string{`unexpected dead letter(s) for "req-c"`},
			suspects: []string{"req-c"},
		},
		{
			name:     "a missing secret not dead-lettered",
			mutate:   func(o *Observation) { o.DeadLetters = nil },
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, ExpectedDeadLetters: 1},
			problems: []string{"were not dead-lettered: req-m"},
			suspects: []string{"req-m"},
		},
		{
			name:     "a missing secret dead-lettered twice",
			mutate:   func(o *Observation) { o.DeadLetters = append(o.DeadLetters, o.DeadLetters[0]) },
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, DeadLetters: 2, ExpectedDeadLetters: 1},
			problems: []string{"2 dead letters for req-m"},
			suspects: []string{"req-m"},
		},
		{
			name:     "requests still pending",
			mutate:   func(o *Observation) { o.Pending = 3 },
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1, Pending: 3},
			problems: []string{"3 request(s) still pending"},
		},
		{
			name:     "requests stranded past max deliver",
			mutate:   func(o *Observation) { o.Stranded = 2 },
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"2 request(s) left in the requests stream"},
		},
		{
			name:     "a connector for a request whose secret is missing",
			mutate:   func(o *Observation) { o.Connectors = append(o.Connectors, Connector{ID: "conn-9", Identity: idLost}) },
			want:     Report{Requests: 4, Identities: 2, Connectors: 3, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"whose secret is missing"},
			suspects: []string{"req-m"},
		},
		{
			name:     "an identity without its connector",
			mutate:   func(o *Observation) { o.Connectors = o.Connectors[:1] },
			want:     Report{Requests: 4, Identities: 2, Connectors: 1, FinalStateMismatches: 1, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{`no connector for ws-0001/stripe/"stripe 1" (requests req-c)`},
			suspects: []string{"req-c"},
		},
		{
			name:     "results stored but not read",
			mutate:   func(o *Observation) { o.StoredResults = 5 },
			want:     Report{Requests: 4, Identities: 2, Connectors: 2, Results: 4, DeadLetters: 1, ExpectedDeadLetters: 1},
			problems: []string{"holds 5 messages but 4 were read"},
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
			if wantOK := len(tt.problems) == 0 && tt.want.Pending == 0 && tt.want.DeadLetters == tt.want.ExpectedDeadLetters &&
				tt.want.MissingResults+tt.want.ExtraResults+tt.want.Duplicates == 0; got.OK() != wantOK {
				t.Errorf("OK() = %t, want %t", got.OK(), wantOK)
			}
		})
	}
}

// TestReportGolden pins the line's format (CI and humans grep it) and the problems' wording.
func TestReportGolden(t *testing.T) {
	p, o := fixture()
	o.Connectors = append(o.Connectors, Connector{ID: "conn-3", Identity: idGitHub, CreatedAt: time.Date(2026, 11, 21, 10, 0, 1, 0, time.UTC)})
	o.Results = o.Results[1:]
	o.StoredResults--
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

// A request id published again after a later request takes its place at whichever copy is applied:
// the identity may end with either's credentials, and the other's verdict may be superseded.
func TestVerifyRepublishedRequest(t *testing.T) {
	p, _ := fixture()
	p.Sends = []Send{{Request: 0, MsgID: "req-a#0"}, {Request: 1, MsgID: "req-b#0"}, {Request: 2, MsgID: "req-c#0"}, {Request: 3, MsgID: "req-m#0"}, {Request: 0, Copy: 1, MsgID: "req-a#1"}}
	for _, tc := range []struct {
		name   string
		mutate func(*Observation)
		ok     bool
	}{
		{"the later request's credentials", func(*Observation) {}, true},
		{"the republished request's credentials", func(o *Observation) {
			o.Connectors[0].CredentialsSHA256 = credentialsSHA256(map[string]string{"token": "one"})
			o.Results[0] = Result{Seq: 1, RequestID: "req-a", Message: "source_updated", ConnectorID: "conn-1"}
			o.Results[1] = Result{Seq: 2, RequestID: "req-b", Message: "source_update_error", ErrorCode: "superseded", ErrorText: "superseded by request req-a, applied after this one was published"}
		}, true},
		{"a success naming another connector than the one holding its credentials", func(o *Observation) {
			o.Connectors[0].CredentialsSHA256 = credentialsSHA256(map[string]string{"token": "one"})
			o.Results[0] = Result{Seq: 1, RequestID: "req-a", Message: "source_updated", ConnectorID: "conn-9"}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, o := fixture()
			tc.mutate(&o)
			if rep := Verify(p, o); rep.OK() != tc.ok {
				t.Fatalf("OK() = %t: %s %q", rep.OK(), rep.Line(), rep.Problems)
			}
		})
	}
}
