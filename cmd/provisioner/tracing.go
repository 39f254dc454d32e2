package main

import (
	"context"
	"fmt"
	"io"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// startTracing builds the process's tracer provider from the OTEL_* environment (off unless it
// asks for traces), plus extra span processors. The returned stop flushes and shuts it down.
func startTracing(ctx context.Context, instance string, stderr io.Writer, extra ...sdktrace.SpanProcessor) (*tracing.Provider, func(), error) {
	tp, err := tracing.FromEnv(ctx, tracing.Service{Name: "provisioner", Version: version, InstanceID: instance}, extra...)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			fmt.Fprintf(stderr, "traces not flushed: %v\n", err)
		}
	}, nil
}
