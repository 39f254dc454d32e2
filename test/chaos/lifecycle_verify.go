package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// identityVerdict is what verifyIdentity found for one identity.
type identityVerdict struct {
	wrong         []wrongVerdict
	finalMismatch string // "" when the connectors at the end are what the last applied request says
	superseded    int
	wantConnector bool // its last request is a submit
}

type wrongVerdict struct{ requestID, what string }

// verifyIdentity checks the verdicts of one identity's requests (in publish order) against each
// other and against the sandbox at the end (its connectors, and every live connector by id).
//
// Requests that are applied are applied in publish order (an older one than the last applied ends
// superseded), so walking the requests in that order replays what Airbyte went through:
//   - a submit is source_created when the identity had no connector (none applied yet, or a
//     disconnect last), else source_updated of the connector the previous submit left: the same id
//     updated in place, or replaced (replaced_id = that id);
//   - a submit's connector is one the sandbox held, for this identity, with this submit's
//     credentials at some point (History); and it is either live at the end or removed by a later
//     applied verdict of this identity (replaced, or deleted by a disconnect): a verdict naming a
//     connector Airbyte never held, or lost, fails here;
//   - a disconnect is source_deleted, deletes the connector the previous submit left, and none of
//     the connectors it says it deleted is still listed;
//   - superseded is only possible while a newer request of the identity exists, and names one;
//   - nothing else fails: the soak's faults are all transient;
//   - at the end, the identity holds exactly one connector, the last applied submit's, with that
//     submit's credentials (by credentials_sha256), or none after a disconnect.
func verifyIdentity(reqs []Request, verdicts map[string]Result, connectors []Connector, live map[string]Connector, held map[string]Held, secrets map[string]map[string]string) identityVerdict {
	var v identityVerdict
	bad := func(id, format string, a ...any) {
		v.wrong = append(v.wrong, wrongVerdict{id, fmt.Sprintf(format, a...)})
	}
	type applied struct {
		req Request
		res Result
	}
	var history []applied
	// complete: every request has a verdict. Without one, whether it was applied is unknown, and
	// the checks against the previous applied request and later removals would guess.
	complete := true
	for _, req := range reqs {
		if _, ok := verdicts[req.ID]; !ok {
			complete = false
		}
	}
	v.wantConnector = len(reqs) > 0 && reqs[len(reqs)-1].Op == OpSubmit
	for i, req := range reqs {
		res, ok := verdicts[req.ID]
		if !ok {
			continue // counted as a missing result
		}
		if !res.Success() {
			if res.ErrorCode != "superseded" {
				bad(req.ID, "result %s (code %q, retryable %t, attempts %d), want a success or superseded", res.Message, res.ErrorCode, res.Retryable, res.Attempts)
				continue
			}
			v.superseded++
			newer := slices.ContainsFunc(reqs[i+1:], func(r Request) bool { return strings.Contains(res.ErrorMessage, r.ID) })
			switch {
			case i == len(reqs)-1:
				bad(req.ID, "superseded, but it is the last request of %s", req.Identity)
			case res.Retryable:
				bad(req.ID, "superseded marked retryable")
			case !slices.Contains(errorMessagesOf(req.Op), res.Message):
				bad(req.ID, "superseded as %s, want one of %v", res.Message, errorMessagesOf(req.Op))
			case !newer:
				bad(req.ID, "superseded by none of the newer requests of %s: %q", req.Identity, res.ErrorMessage)
			}
			continue
		}
		var prev *applied
		if len(history) > 0 {
			prev = &history[len(history)-1]
		}
		connected := prev != nil && prev.req.Op == OpSubmit
		// the sandbox's truth
		switch h, ok := held[res.ConnectorID]; {
		case req.Op == OpSubmit && res.ConnectorID == "":
			bad(req.ID, "%s names no connector", res.Message)
		case req.Op == OpSubmit && held != nil && !ok:
			bad(req.ID, "%s names connector %s, which the sandbox never held", res.Message, res.ConnectorID)
		case req.Op == OpSubmit && held != nil && h.Identity != req.Identity:
			bad(req.ID, "%s names connector %s, which the sandbox held for %s", res.Message, res.ConnectorID, h.Identity)
		case req.Op == OpSubmit && held != nil && !h.Credentials[credentialsSHA256(secrets[req.SecretPath])]:
			bad(req.ID, "%s names connector %s, which never held the credentials of %s", res.Message, res.ConnectorID, req.SecretPath)
		case req.Op == OpSubmit && res.ReplacedID != "" && isLive(live, res.ReplacedID):
			bad(req.ID, "source_updated replaced %s, but the sandbox still lists it", res.ReplacedID)
		case req.Op == OpDisconnect:
			for _, d := range res.DeletedIDs {
				if isLive(live, d) {
					bad(req.ID, "source_deleted %s, but the sandbox still lists it", d)
				}
			}
		}
		// the identity's history
		switch {
		case req.Op == OpDisconnect && res.Message != "source_deleted":
			bad(req.ID, "%s, want source_deleted", res.Message)
		case req.Op == OpDisconnect && res.AlreadyAbsent != (len(res.DeletedIDs) == 0):
			bad(req.ID, "source_deleted %v with already_absent %t", res.DeletedIDs, res.AlreadyAbsent)
		case !complete:
		case req.Op == OpDisconnect && connected && !slices.Contains(res.DeletedIDs, prev.res.ConnectorID):
			bad(req.ID, "source_deleted %v, but %s's connector was %s (from %s)", res.DeletedIDs, req.Identity, prev.res.ConnectorID, prev.req.ID)
		case req.Op == OpSubmit && !connected && res.Message != "source_created":
			bad(req.ID, "%s %s, but %s had no connector: want source_created", res.Message, res.ConnectorID, req.Identity)
		case req.Op == OpSubmit && connected && res.Message != "source_updated":
			bad(req.ID, "%s %s, but %s had connector %s (from %s): want source_updated", res.Message, res.ConnectorID, req.Identity, prev.res.ConnectorID, prev.req.ID)
		case req.Op == OpSubmit && connected && res.ConnectorID != prev.res.ConnectorID && res.ReplacedID != prev.res.ConnectorID:
			bad(req.ID, "source_updated %s (replaced %q) neither updates nor replaces %s's connector %s (from %s)", res.ConnectorID, res.ReplacedID, req.Identity, prev.res.ConnectorID, prev.req.ID)
		}
		history = append(history, applied{req, res})
	}

	// A submit's connector is live (and this identity's), or a later verdict removed it.
	for i, a := range history {
		if a.req.Op != OpSubmit || a.res.ConnectorID == "" {
			continue
		}
		id := a.res.ConnectorID
		if c, ok := live[id]; ok {
			if c.Identity != a.req.Identity {
				bad(a.req.ID, "%s names connector %s, which the sandbox holds for %s", a.res.Message, id, c.Identity)
			}
			continue
		}
		removed := slices.ContainsFunc(history[i+1:], func(b applied) bool {
			return b.res.ReplacedID == id || slices.Contains(b.res.DeletedIDs, id)
		})
		if !removed && complete {
			bad(a.req.ID, "%s names connector %s, which the sandbox does not hold and no later verdict removed", a.res.Message, id)
		}
	}

	// The end: exactly what the last applied request says.
	var ids []string
	for _, c := range connectors {
		ids = append(ids, c.ID)
	}
	if len(history) == 0 || history[len(history)-1].req.Op == OpDisconnect {
		if len(connectors) > 0 {
			v.finalMismatch = fmt.Sprintf("connector(s) %v, but its last applied request says none", ids)
		}
		return v
	}
	last := history[len(history)-1]
	want := credentialsSHA256(secrets[last.req.SecretPath])
	switch {
	case len(connectors) == 0:
		v.finalMismatch = fmt.Sprintf("no connector, but its last applied request %s says %s", last.req.ID, last.res.ConnectorID)
	case len(connectors) > 1:
		v.finalMismatch = fmt.Sprintf("connectors %v, but its last applied request %s says only %s", ids, last.req.ID, last.res.ConnectorID)
	case connectors[0].ID != last.res.ConnectorID:
		v.finalMismatch = fmt.Sprintf("connector %s, but its last applied request %s says %s", connectors[0].ID, last.req.ID, last.res.ConnectorID)
	case connectors[0].CredentialsSHA256 != want:
		v.finalMismatch = fmt.Sprintf("connector %s holds credentials_sha256 %.12s…, but its last applied request %s submitted %s (%.12s…)",
			connectors[0].ID, connectors[0].CredentialsSHA256, last.req.ID, last.req.SecretPath, want)
	}
	return v
}

// errorMessagesOf are the error messages a request's failure may carry. A superseded submit's
// depends on what the identity held when it came, which the publish order does not tell.
func errorMessagesOf(op Op) []string {
	if op == OpDisconnect {
		return []string{"source_delete_error"}
	}
	return []string{"source_create_error", "source_update_error"}
}

func isLive(live map[string]Connector, id string) bool {
	_, ok := live[id]
	return ok
}

// credentialsSHA256 is how the sandbox's admin view proves which credentials a connector holds: the
// hex SHA-256 of json.Marshal of the credentials as a map[string]string.
func credentialsSHA256(creds map[string]string) string {
	b, _ := json.Marshal(creds) // a map[string]string always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
