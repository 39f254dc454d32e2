package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Result is one message of the results stream, as far as the soak reads it.
type Result struct {
	Seq         uint64
	RequestID   string
	Message     string
	ConnectorID string // data.id of a success
	// ReplacedID is a source_updated's replaced connector; DeletedIDs and AlreadyAbsent are a
	// source_deleted's.
	ReplacedID    string
	DeletedIDs    []string
	AlreadyAbsent bool
	ErrorCode     string // error.code of a failure
	ErrorMessage  string
	Retryable     bool
	Attempts      int
	Revision      int
	Stored        time.Time
}

// Success reports whether the result says the request was applied.
func (r Result) Success() bool { return r.ErrorCode == "" }

// parseResult reads the fields the soak checks from a result body.
func parseResult(seq uint64, body []byte) (Result, error) {
	var v struct {
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
		Attempts  int    `json:"attempts"`
		Revision  int    `json:"revision"`
		Data      *struct {
			ID         string   `json:"id"`
			DeletedIDs []string `json:"deleted_ids"`
		} `json:"data"`
		ReplacedID    string `json:"replaced_id"`
		AlreadyAbsent bool   `json:"already_absent"`
		Error         *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			Retryable bool   `json:"retryable"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Result{}, fmt.Errorf("result %d: %w", seq, err)
	}
	if v.RequestID == "" || v.Message == "" {
		return Result{}, fmt.Errorf("result %d: no request_id or message", seq)
	}
	r := Result{Seq: seq, RequestID: v.RequestID, Message: v.Message, Attempts: v.Attempts, Revision: v.Revision,
		ReplacedID: v.ReplacedID, AlreadyAbsent: v.AlreadyAbsent}
	if v.Data != nil {
		r.ConnectorID, r.DeletedIDs = v.Data.ID, v.Data.DeletedIDs
	}
	if v.Error != nil {
		r.ErrorCode, r.ErrorMessage, r.Retryable = v.Error.Code, v.Error.Message, v.Error.Retryable
	}
	if (v.Data == nil) == (v.Error == nil) {
		return r, fmt.Errorf("result %d: exactly one of data and error expected", seq)
	}
	return r, nil
}

// DeadLetter is one message of the dead-letter stream.
type DeadLetter struct {
	Seq        uint64
	RequestID  string
	Reason     string
	Deliveries string
}

// Connector is one connector the sandbox holds.
type Connector struct {
	ID        string
	Identity  Identity
	CreatedAt time.Time
	// CredentialsSHA256 is the hex SHA-256 of json.Marshal of its credentials (map[string]string),
	// as the sandbox's admin view reports it.
	CredentialsSHA256 string
}

// Observation is what the soak found once the run settled.
type Observation struct {
	Results     []Result
	DeadLetters []DeadLetter
	Connectors  []Connector
	// Pending is the consumer's NumPending + NumAckPending.
	Pending uint64
	// Stranded counts request-stream messages the consumer no longer delivers (past the server's
	// MaxDeliver): requests that would never end.
	Stranded uint64
	// StoredResults is the results stream's message count, to prove every result was read.
	StoredResults uint64
	// Held is every connector the sandbox held during the run, by id, and which credentials
	// (History); nil when not recorded, and then only the end is checked.
	Held map[string]Held
}

// Report is the soak's verdict.
type Report struct {
	Requests, Identities, Connectors, Duplicates int
	Results, MissingResults, ExtraResults        int
	DeadLetters, ExpectedDeadLetters             int
	Pending                                      uint64
	// WrongResults are verdicts that contradict the sandbox's truth or the identity's history;
	// FinalStateMismatches are identities whose connectors at the end are not what their last
	// applied request says; Superseded are requests that ended superseded (a newer one had been
	// applied first).
	WrongResults, FinalStateMismatches, Superseded int
	Problems                                       []string
	Suspects                                       []string // request ids whose timeline explains a problem
	Cluster                                        ClusterStats
}

// Line is the one line the soak ends with.
func (r Report) Line() string {
	return fmt.Sprintf("chaos: requests=%d identities=%d connectors=%d duplicates=%d results=%d missing_results=%d extra_results=%d dead_letters=%d expected_dead_letters=%d pending=%d wrong_results=%d final_state_mismatches=%d superseded=%d",
		r.Requests, r.Identities, r.Connectors, r.Duplicates, r.Results, r.MissingResults, r.ExtraResults, r.DeadLetters, r.ExpectedDeadLetters, r.Pending,
		r.WrongResults, r.FinalStateMismatches, r.Superseded) + r.Cluster.fields()
}

// OK is the verdict: every guarantee held.
func (r Report) OK() bool {
	return r.Duplicates == 0 && r.MissingResults == 0 && r.ExtraResults == 0 && r.Pending == 0 &&
		r.WrongResults == 0 && r.FinalStateMismatches == 0 &&
		r.DeadLetters == r.ExpectedDeadLetters && len(r.Problems) == 0
}

// maxListed bounds how many ids one problem line names.
const maxListed = 10

// Verify checks the observation against the plan: one result per request id, and true (lifecycle
// verify, verifyIdentity); every identity ends holding exactly what its last applied request says;
// at most one connector per identity; one dead letter per request with a missing secret; nothing
// pending.
func Verify(p *Plan, o Observation) Report {
	var rep Report
	suspects := map[string]bool{}
	problem := func(format string, a ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, a...)) }

	byID := make(map[string]Request, len(p.Requests))
	idsOf := map[Identity][]string{}
	var identities []Identity // that some request with a secret acts on, in order of first request
	missingOnly := map[Identity]bool{}
	for _, r := range p.Requests {
		byID[r.ID] = r
		if idsOf[r.Identity] == nil {
			if r.MissingSecret {
				missingOnly[r.Identity] = true
			} else {
				identities = append(identities, r.Identity)
			}
		}
		idsOf[r.Identity] = append(idsOf[r.Identity], r.ID)
		if r.MissingSecret {
			rep.ExpectedDeadLetters++
		}
	}
	rep.Requests = len(p.Requests)

	// Connectors: none for identities nobody asked for, or whose only requests lack their secret;
	// at most one for any other.
	connectorsOf := map[Identity][]Connector{}
	live := map[string]Connector{}
	for _, c := range o.Connectors {
		connectorsOf[c.Identity] = append(connectorsOf[c.Identity], c)
		live[c.ID] = c
	}
	rep.Connectors = len(o.Connectors)
	for _, id := range sortedIdentities(connectorsOf) {
		cs := connectorsOf[id]
		switch {
		case idsOf[id] == nil:
			problem("connector(s) %s for %s, which no request asked for", connectorIDs(cs), id)
		case missingOnly[id]:
			problem("connector(s) %s for %s, whose secret is missing", connectorIDs(cs), id)
			markAll(suspects, idsOf[id])
		case len(cs) > 1:
			rep.Duplicates += len(cs) - 1
			problem("duplicate connectors for %s: %s (requests %s)", id, connectorIDs(cs), listed(idsOf[id]))
			markAll(suspects, idsOf[id])
		}
	}

	// Results: exactly one per request id.
	resultsOf := map[string][]Result{}
	for _, r := range o.Results {
		resultsOf[r.RequestID] = append(resultsOf[r.RequestID], r)
	}
	var missing, unknown []string
	verdicts := map[string]Result{}
	for _, id := range slices.Sorted(maps.Keys(resultsOf)) {
		rs := resultsOf[id]
		if _, ok := byID[id]; !ok {
			unknown = append(unknown, id)
			rep.ExtraResults += len(rs)
			continue
		}
		rep.Results++
		verdicts[id] = rs[0]
		if len(rs) > 1 {
			rep.ExtraResults += len(rs) - 1
			problem("%d results for %s: %s", len(rs), id, describeResults(rs))
			suspects[id] = true
		}
	}
	for _, r := range p.Requests {
		if len(resultsOf[r.ID]) == 0 {
			missing = append(missing, r.ID)
			suspects[r.ID] = true
		}
	}
	rep.MissingResults = len(missing)
	if len(missing) > 0 {
		problem("%d request(s) without a result: %s", len(missing), listed(missing))
	}
	if len(unknown) > 0 {
		problem("results for %d request id(s) never published: %s", len(unknown), listed(unknown))
	}
	if o.StoredResults != uint64(len(o.Results)) {
		problem("the results stream holds %d messages but %d were read", o.StoredResults, len(o.Results))
	}

	// Every verdict against the identity's history and the sandbox's truth; every identity's
	// connectors against its last applied request.
	wrong := func(id, format string, a ...any) {
		rep.WrongResults++
		problem("%s: %s", id, fmt.Sprintf(format, a...))
		suspects[id] = true
	}
	for _, r := range p.Requests {
		if !r.MissingSecret {
			continue
		}
		for _, res := range resultsOf[r.ID] {
			if res.Message != "source_create_error" || res.ErrorCode != "secret_not_found" {
				wrong(r.ID, "result %s (code %q), want source_create_error with secret_not_found", res.Message, res.ErrorCode)
			}
		}
	}
	for _, id := range identities {
		var reqs []Request
		for _, rid := range idsOf[id] {
			reqs = append(reqs, byID[rid])
		}
		v := verifyIdentity(reqs, verdicts, connectorsOf[id], live, o.Held, p.Secrets)
		rep.Superseded += v.superseded
		for _, w := range v.wrong {
			wrong(w.requestID, "%s", w.what)
		}
		if v.finalMismatch != "" {
			rep.FinalStateMismatches++
			problem("final state of %s: %s (requests %s)", id, v.finalMismatch, listed(idsOf[id]))
			markAll(suspects, idsOf[id])
		}
		if v.wantConnector {
			rep.Identities++
		}
	}

	// Dead letters: one per request with a missing secret, none for anything else.
	rep.DeadLetters = len(o.DeadLetters)
	dlOf := map[string][]DeadLetter{}
	for _, d := range o.DeadLetters {
		dlOf[d.RequestID] = append(dlOf[d.RequestID], d)
	}
	for _, id := range slices.Sorted(maps.Keys(dlOf)) {
		ds := dlOf[id]
		req, ok := byID[id]
		switch {
		case !ok || !req.MissingSecret:
			problem("unexpected dead letter(s) for %q: %s", id, describeDeadLetters(ds))
			if ok {
				suspects[id] = true
			}
		case len(ds) > 1:
			problem("%d dead letters for %s: %s", len(ds), id, describeDeadLetters(ds))
			suspects[id] = true
		case ds[0].Reason != "secret_not_found":
			problem("dead letter for %s has reason %q, want secret_not_found", id, ds[0].Reason)
			suspects[id] = true
		}
	}
	var undead []string
	for _, r := range p.Requests {
		if r.MissingSecret && len(dlOf[r.ID]) == 0 {
			undead = append(undead, r.ID)
			suspects[r.ID] = true
		}
	}
	if len(undead) > 0 {
		problem("%d request(s) with a missing secret were not dead-lettered: %s", len(undead), listed(undead))
	}

	rep.Pending = o.Pending
	if o.Pending > 0 {
		problem("%d request(s) still pending on the consumer", o.Pending)
	}
	if o.Stranded > 0 {
		problem("%d request(s) left in the requests stream that the consumer no longer delivers", o.Stranded)
	}
	rep.Suspects = slices.Sorted(maps.Keys(suspects))
	return rep
}

func describeResults(rs []Result) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("#%d %s %s%s attempts=%d at %s", r.Seq, r.Message, r.ConnectorID, r.ErrorCode, r.Attempts, r.Stored.Format(time.RFC3339Nano))
	}
	return strings.Join(parts, "; ")
}

func describeDeadLetters(ds []DeadLetter) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("#%d reason=%s deliveries=%s", d.Seq, d.Reason, d.Deliveries)
	}
	return strings.Join(parts, "; ")
}

func connectorIDs(cs []Connector) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.ID + " (created " + c.CreatedAt.Format(time.RFC3339Nano) + ")"
	}
	return strings.Join(parts, ", ")
}

// listed names the first maxListed ids.
func listed(ids []string) string {
	if len(ids) <= maxListed {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(ids)-maxListed)
}

func markAll(set map[string]bool, ids []string) {
	for _, id := range ids {
		set[id] = true
	}
}

func sortedIdentities[V any](m map[Identity]V) []Identity {
	out := make([]Identity, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].String() < out[b].String() })
	return out
}
