// Package provision is the domain step of the provisioner: given one decoded request, it decides
// what to do and does it — policy check, ledger claim in the request's publish order, secret fetch,
// tokens, the operation at Airbyte — and returns the result to publish and what to tell the broker.
// It knows nothing of NATS messages.
//
// One file per operation: onboard.go (customer.onboarded), upsert.go (credentials.submitted, which
// creates in create.go, updates an embedded source in place in update.go or replaces an Agent
// Engine connector in replace.go), disconnect.go (connector.disconnected) and offboard.go
// (customer.offboarded). claim.go orders requests per identity and holds leases; check.go runs
// Airbyte's credential check; record.go is what the ledger keeps and results carry.
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// Airbyte is what the worker needs of the Airbyte API. Implemented by *airbyte.Client.
type Airbyte interface {
	Workspace(ctx context.Context, workspaceName string) (airbyte.WorkspaceRef, error)
	EnsureWorkspace(ctx context.Context, workspaceName, regionID string) (airbyte.WorkspaceRef, error)
	ListConnectors(ctx context.Context, p airbyte.ListConnectorsParams) (*airbyte.ConnectorSourceListResponse, error)
	CreateConnector(ctx context.Context, req airbyte.ConnectorSourceCreateRequest) (*airbyte.ConnectorSourceCreateResponse, error)
	DeleteConnector(ctx context.Context, workspaceName, id string) (*airbyte.ConnectorSourceDeleteAcceptedResponse, error)
	UpdateSource(ctx context.Context, workspaceName, id string, req airbyte.SourceUpdateRequest) (*airbyte.SourceUpdateResponse, error)
	CheckConnectorConfig(ctx context.Context, req airbyte.ConnectorSourceCheckConfigRequest) (*airbyte.ConnectorSourceCheckConfigResponse, error)
	UpdateWorkspace(ctx context.Context, id string, req airbyte.WorkspaceUpdateRequest) (*airbyte.WorkspaceUpdateResponse, error)
	DeleteWorkspace(ctx context.Context, id string) (*airbyte.WorkspaceDeleteResponse, error)
}

// Secrets fetches credentials by reference. Implemented by *vault.Store.
type Secrets interface {
	Get(ctx context.Context, ref vault.Ref) (secret.Fields, error)
	Backend(ref vault.Ref) string
}

// Ledger claims connector identities. Implemented by *ledger.Ledger.
type Ledger interface {
	Claim(ctx context.Context, id ledger.Identity, req ledger.Request) (ledger.Claim, error)
	Note(ctx context.Context, id ledger.Identity, req ledger.Request, record json.RawMessage) (ledger.Claim, error)
	// offboarding: a workspace's marker, its identities by key
	MarkOffboarded(ctx context.Context, workspace string, req ledger.Request) (ledger.Offboarding, bool, error)
	RecordOffboarded(ctx context.Context, workspace string, o ledger.Offboarding) error
	WorkspaceIdentities(ctx context.Context, workspace string) ([]string, error)
	ClaimKey(ctx context.Context, workspace, key string, req ledger.Request) (ledger.Claim, error)
}

// Observer receives the domain events worth counting. Implemented by *metrics.Metrics.
type Observer interface {
	SecretFetched(backend, outcome string)
	LedgerConflict()
	LeaseTakeover()
}

// LookupMode says when to list a workspace's connectors before creating one.
type LookupMode string

// Lookup modes.
const (
	// LookupRecovery lists only when an earlier attempt may have created the connector (a lease taken
	// over, a released lease whose create was sent, an ambiguous create failure). With the ledger this is
	// enough for exactly-once among the provisioner's own requests, at one API call per connector less.
	LookupRecovery LookupMode = "recovery"
	// LookupAlways lists before every create, so connectors made outside the provisioner (by the widget,
	// or before the provisioner was deployed) are adopted too — and given the request's credentials,
	// since they may hold any.
	LookupAlways LookupMode = "always"
)

// Config configures a Service.
type Config struct {
	Policy *vault.Policy // nil = no path policy
	Lookup LookupMode
	// Budget bounds the in-process retries of one delivery; keep it below the consumer's AckWait.
	Budget time.Duration
	// LeaseRenewEvery is how often a held lease is renewed; a quarter of the ledger's lease TTL.
	LeaseRenewEvery time.Duration
	// LeaseWait is how long a delivery watches a lease another worker holds before it gives the
	// message back; 0 = the lease TTL (4 × LeaseRenewEvery) and a second, so that a dead worker's
	// lease is seen to lapse by the delivery that started watching it.
	LeaseWait time.Duration
	// LeaseMargin: a create is not sent unless the lease has at least this long left.
	LeaseMargin time.Duration
	// CreateSettle is how long after a create call whose outcome is unknown (timed out, interrupted,
	// connection lost) Airbyte may still commit it. The lease is held that long before anyone else
	// may list and create. Keep it above the client's per-attempt timeout.
	CreateSettle time.Duration
	// CheckCredentials runs Airbyte's credential check before every create or replace, as if each
	// credentials.submitted said "check": true.
	CheckCredentials bool
	// NewBackOff builds the in-process backoff between attempts; nil = exponential with jitter.
	NewBackOff func() backoff.BackOff
	// AtStep, when set, is called at each step of an operation whose effect would survive a crash
	// (tests). A non-nil error stops the handler there as if the process had been killed: nothing
	// more is written, the lease is left as it is.
	AtStep func(Step) error
	Now    func() time.Time
}

// Service handles requests. It is safe for concurrent use.
type Service struct {
	airbyte  Airbyte
	secrets  Secrets
	ledger   Ledger
	observer Observer
	cfg      Config
}

// New returns a Service.
func New(a Airbyte, s Secrets, l Ledger, o Observer, cfg Config) (*Service, error) {
	if a == nil || s == nil || l == nil || o == nil {
		return nil, errors.New("provision: airbyte, secrets, ledger and observer are required")
	}
	if cfg.Budget <= 0 || cfg.LeaseRenewEvery <= 0 || cfg.CreateSettle <= 0 {
		return nil, errors.New("provision: budget, lease renewal interval and create settle time must be positive")
	}
	if cfg.Lookup == "" {
		cfg.Lookup = LookupRecovery
	}
	if cfg.LeaseWait <= 0 {
		cfg.LeaseWait = 4*cfg.LeaseRenewEvery + time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewBackOff == nil {
		cfg.NewBackOff = func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval = 100 * time.Millisecond
			b.MaxInterval = 5 * time.Second
			b.MaxElapsedTime = 0 // the budget's context bounds it
			return b
		}
	}
	return &Service{airbyte: a, secrets: s, ledger: l, observer: o, cfg: cfg}, nil
}

// Delivery describes the delivery of the request being handled.
type Delivery struct {
	Number int  // 1 for the first delivery
	Final  bool // the last delivery the consumer allows: a retryable failure now ends the request
	// Sequence is the request's original stream sequence: its place in the app's publish order
	// (a replayed dead letter keeps the one it was first published with). 0 = unknown: unordered.
	Sequence uint64
	// Revision is the revision of the verdict this delivery produces: 1, or n+1 for the n-th replay
	// of a dead letter. 0 counts as 1.
	Revision int
	Logger   *slog.Logger
}

// Action tells the consumer what to do with the message.
type Action int

// Actions.
const (
	// Ack: publish Result, then ack.
	Ack Action = iota + 1
	// Retry: publish nothing, Nak with a delay; a later delivery will try again.
	Retry
	// DeadLetter: publish Result (an error), copy the request to the dead-letter stream, Term.
	DeadLetter
)

func (a Action) String() string {
	switch a {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead_letter"
	}
	return "unknown"
}

// Outcomes, as counted by metrics.
const (
	OutcomeCreated        = "created"
	OutcomeWorkspaceReady = "workspace_ready"
	OutcomeAdopted        = "adopted"
	OutcomeUpdated        = "updated"  // an embedded source's configuration was replaced in place
	OutcomeReplaced       = "replaced" // a connector was replaced by a new one with the new credentials
	OutcomeDeleted        = "deleted"
	OutcomeOffboarded     = "offboarded"
	OutcomeReplayed       = "replayed"
	OutcomeSuperseded     = "superseded"
	OutcomeRejected       = "credentials_rejected"
	OutcomePermanentError = "permanent_error"
	OutcomeRetry          = "retry"
	OutcomeDeadLetter     = "dead_letter"
)

// Decision is the answer for one delivery.
type Decision struct {
	Action  Action
	Result  *contract.Result // set for Ack and DeadLetter
	Outcome string
	// Err is the cause of a Retry or DeadLetter (a *event.CodedError).
	Err error
	// RetryAfter is a hint for the Nak delay of a Retry (0 = the consumer's backoff).
	RetryAfter time.Duration
}

// Handle handles one delivery of a request.
func (s *Service) Handle(ctx context.Context, req event.Request, d Delivery) Decision {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	var dec Decision
	switch req.Kind {
	case contract.KindCredentialsSubmitted:
		dec = s.credentialsSubmitted(ctx, req, d)
	case contract.KindCustomerOnboarded:
		dec = s.customerOnboarded(ctx, req, d)
	case contract.KindConnectorDisconnected:
		dec = s.connectorDisconnected(ctx, req, d)
	case contract.KindCustomerOffboarded:
		dec = s.customerOffboarded(ctx, req, d)
	default:
		dec = s.fail(req, d, event.Coded(contract.CodeUnsupportedSubject, false, fmt.Errorf("unsupported request kind %q", req.Kind)))
	}
	if dec.Result != nil {
		dec.Result.Attempts = max(d.Number, 1)
		dec.Result.ProducedAt = s.cfg.Now().UTC()
		stampRevision(dec.Result, d)
	}
	return dec
}

// fail turns an error into a Retry, or — when it is permanent or this is the last delivery — a
// dead-lettered error result.
func (s *Service) fail(req event.Request, d Delivery, err error) Decision {
	return s.failAs(req.Kind.ErrorMessage(), req, d, err)
}

// failAs is fail with the error result's message chosen by the operation (an update's failure is
// source_update_error, not source_create_error).
func (s *Service) failAs(message string, req event.Request, d Delivery, err error) Decision {
	var crash *CrashError
	if errors.As(err, &crash) {
		return Decision{Action: Retry, Outcome: OutcomeRetry, Err: err}
	}
	code, retryable := event.CodeOf(err)
	if retryable && !d.Final {
		return Decision{Action: Retry, Outcome: OutcomeRetry, Err: err}
	}
	outcome := OutcomePermanentError
	if retryable {
		outcome = OutcomeDeadLetter
	}
	res := event.ErrorResult(req.Kind, req.ID(), req.WorkspaceName(), d.Number, code, errorMessage(err), retryable, s.cfg.Now())
	res.Message = message
	return Decision{Action: DeadLetter, Result: res, Outcome: outcome, Err: err}
}

// errorMessage is the text of an error result: the cause without the code prefix.
func errorMessage(err error) string {
	var ce *event.CodedError
	if errors.As(err, &ce) {
		return ce.Err.Error()
	}
	return err.Error()
}

// classifyAirbyte gives an Airbyte failure its result code. Whether it may pass comes from the
// error's type, never its text.
func classifyAirbyte(op string, err error) error {
	var crash *CrashError
	var coded *event.CodedError
	if errors.As(err, &crash) || errors.As(err, &coded) {
		return err // a crash, or classified already (a step of the operation): one code, each prefix once
	}
	var apiErr *airbyte.APIError
	var trErr *airbyte.TransportError
	// The client's errors name their operation already ("airbyte connectors_create: 422 ..."):
	// they are kept as they are, so that each prefix appears once.
	switch {
	case errors.As(err, &apiErr):
		switch {
		case apiErr.StatusCode == 400 || apiErr.StatusCode == 422:
			return event.Coded(contract.CodeAirbyteBadRequest, false, err)
		case apiErr.StatusCode == 401:
			return event.Coded(contract.CodeAirbyteUnauthorized, false, err)
		case apiErr.StatusCode == 403:
			return event.Coded(contract.CodeAirbyteForbidden, false, err)
		case apiErr.StatusCode == 404:
			return event.Coded(contract.CodeAirbyteNotFound, false, err)
		}
		// 429 and every 5xx: Airbyte may answer differently on a later delivery.
		return event.Coded(contract.CodeAirbyteUnavailable, true, err)
	case errors.As(err, &trErr):
		return event.Coded(contract.CodeAirbyteUnavailable, true, err)
	case errors.Is(err, context.DeadlineExceeded):
		return event.Coded(contract.CodeAirbyteUnavailable, true, fmt.Errorf("%s: %w", op, err))
	case errors.Is(err, context.Canceled):
		return event.Coded(contract.CodeAirbyteUnavailable, true, fmt.Errorf("%s: interrupted: %w", op, err))
	}
	return event.Coded(contract.CodeInternal, false, fmt.Errorf("%s: %w", op, err))
}

// classifySecret gives a secret-store failure its result code (the vault package's codes are the
// same closed list).
func classifySecret(err error) error {
	var coded interface {
		Code() string
		Retryable() bool
	}
	if errors.As(err, &coded) {
		return event.Coded(contract.Code(coded.Code()), coded.Retryable(), err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return event.Coded(contract.CodeSecretBackendUnavailable, true, err)
	}
	return event.Coded(contract.CodeInternal, false, err)
}

// secretOutcome is the metrics outcome of a secret fetch.
func secretOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	switch code, _ := event.CodeOf(classifySecret(err)); code {
	case contract.CodeSecretNotFound:
		return "not_found"
	case contract.CodeSecretPermissionDenied:
		return "permission_denied"
	case contract.CodeSecretBackendUnavailable:
		return "unavailable"
	}
	return "invalid"
}
