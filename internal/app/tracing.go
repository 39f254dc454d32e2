package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/provision"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/tracing"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// tracedSecrets gives every secret fetch a span that names its backend, never the reference.
type tracedSecrets struct{ provision.Secrets }

func (s tracedSecrets) Get(ctx context.Context, ref vault.Ref) (secret.Fields, error) {
	ctx, span := tracing.StartSecretFetch(ctx, s.Backend(ref))
	f, err := s.Secrets.Get(ctx, ref)
	span.End(err, secretErrorCode(err))
	return f, err
}

// secretErrorCode is a secret-store error's code (the vault package's closed list).
func secretErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var coded interface{ Code() string }
	if errors.As(err, &coded) {
		return coded.Code()
	}
	return ""
}

// tracedLedger gives every ledger claim a span with its outcome.
type tracedLedger struct{ provision.Ledger }

func (l tracedLedger) Claim(ctx context.Context, id ledger.Identity, req ledger.Request) (ledger.Claim, error) {
	ctx, span := tracing.StartLedger(ctx, "claim")
	c, err := l.Ledger.Claim(ctx, id, req)
	if err == nil && span.Recording() {
		span.SetAttributes(tracing.AttrLedgerOutcome.String(claimOutcome(c)))
	}
	span.End(err, "")
	return c, err
}

func claimOutcome(c ledger.Claim) string {
	switch c.Outcome {
	case ledger.Claimed:
		if c.TookOver {
			return "took_over"
		}
		return "claimed"
	case ledger.Recorded:
		return "recorded"
	case ledger.Superseded:
		return "superseded"
	case ledger.Busy:
		return "busy"
	}
	return "unknown"
}

// flushTraces exports the spans still buffered once the worker has drained, within 5s.
func flushTraces(ctx context.Context, tp trace.TracerProvider, logger *slog.Logger) {
	f, ok := tp.(interface{ ForceFlush(context.Context) error })
	if !ok {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := f.ForceFlush(fctx); err != nil {
		logger.Warn("traces not flushed", "error", err)
	}
}
