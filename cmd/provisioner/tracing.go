package main

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// startTracing builds the process's tracer provider from the OTEL_* environment (off unless it
// asks for traces), plus extra span processors. The returned stop flushes and shuts it down.
// OpenTelemetry's own errors (an export that failed) go to logger, in the process's log format:
// the SDK reports them through its one process-wide handler, which only main may set.
func startTracing(ctx context.Context, instance string, logger *slog.Logger, extra ...sdktrace.SpanProcessor) (*tracing.Provider, func(), error) {
	tp, err := tracing.FromEnv(ctx, tracing.Service{Name: "provisioner", Version: version, InstanceID: instance}, extra...)
	if err != nil {
		return nil, nil, usageError{err}
	}
	if tp.Enabled() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Warn("tracing", "error", err) }))
	}
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			logger.Warn("traces not flushed", "error", err)
		}
	}, nil
}
