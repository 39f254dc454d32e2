package main

import (
	"fmt"
	"math/rand/v2"
)

// maxRequestsPerIdentity bounds how many request ids act on one identity. The ledger keeps the
// verdicts of a few earlier requests beside the last one, so that a late redelivery of an applied
// request replays its verdict; the soak stays well inside that.
const maxRequestsPerIdentity = 6

// lifecycle generates the connector's life for the identities of a plan: each starts with a submit,
// and later request ids rotate its credentials, submit the same ones again, disconnect it, or
// connect it again after a disconnect.
type lifecycle struct {
	seed    int64
	secrets map[string]map[string]string
	open    []*identityLife // the identities that may take another request
}

// identityLife is the plan's view of one identity so far.
type identityLife struct {
	id        Identity
	kind      connectorKind
	template  string
	requests  int
	connected bool   // its last request is a submit
	secret    string // its last submit's secret path
	secrets   int    // secret files made for it
}

func newLifecycle(seed int64, secrets map[string]map[string]string) *lifecycle {
	return &lifecycle{seed: seed, secrets: secrets}
}

// canContinue reports whether some identity may take another request.
func (l *lifecycle) canContinue() bool { return len(l.open) > 0 }

// start is the first request of a new identity: a submit with its first secret.
func (l *lifecycle) start(reqID string, id Identity, k connectorKind, template string) Request {
	il := &identityLife{id: id, kind: k, template: template}
	l.open = append(l.open, il)
	return l.submit(il, reqID, true)
}

// next is a later request for an identity already asked for: half of the time one of the most
// recent identities (racing with requests still in flight), otherwise any.
func (l *lifecycle) next(rng *rand.Rand, reqID string) Request {
	var at int
	if rng.IntN(2) == 0 {
		at = max(0, len(l.open)-1-rng.IntN(64))
	} else {
		at = rng.IntN(len(l.open))
	}
	il := l.open[at]
	var r Request
	switch u := rng.Float64(); {
	case !il.connected && u < 0.2:
		r = l.disconnect(il, reqID) // a disconnect of what is already disconnected
	case !il.connected:
		r = l.submit(il, reqID, true) // connected again
	case u < 0.5:
		r = l.submit(il, reqID, true) // a rotation: new credentials
	case u < 0.65:
		r = l.submit(il, reqID, false) // the same credentials under a new request id
	default:
		r = l.disconnect(il, reqID)
	}
	if il.requests >= maxRequestsPerIdentity {
		l.open = append(l.open[:at], l.open[at+1:]...)
	}
	return r
}

func (l *lifecycle) submit(il *identityLife, reqID string, newSecret bool) Request {
	il.requests++
	if newSecret || il.secret == "" {
		il.secrets++
		il.secret = fmt.Sprintf("customers/%s/%s-%s-%d.json", il.id.Workspace, il.kind.Type, slug(il.id.Name), il.secrets)
		fields := map[string]string{}
		for _, f := range il.kind.Fields {
			fields[f] = secretValue(l.seed, il.secret, f)
		}
		l.secrets[il.secret] = fields
	}
	il.connected = true
	return Request{ID: reqID, Op: OpSubmit, Identity: il.id, Template: il.template, SecretPath: il.secret}
}

func (l *lifecycle) disconnect(il *identityLife, reqID string) Request {
	il.requests++
	il.connected = false
	return Request{ID: reqID, Op: OpDisconnect, Identity: il.id, Template: il.template}
}

// slug makes a name fit a file name.
func slug(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}
