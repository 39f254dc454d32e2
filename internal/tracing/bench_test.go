package tracing_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// discard is an exporter that drops every span: the cost of recording without the cost of a wire.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkDeliveryTracing measures what tracing adds to one delivery of a credentials request,
// without the work itself: the process span (extracting the request's context), the request's
// attributes and log ids, the ledger claim and complete, the secret fetch, the result's publish span
// injected into its headers. "off" is the worker with no provider (the default); "on" records
// every span (always sampled) and exports to a no-op exporter through the batch processor, as a
// worker configured for OTLP would. The Airbyte HTTP spans are measured end to end by
// BenchmarkTracing in internal/app.
func BenchmarkDeliveryTracing(b *testing.B) {
	on := tracing.NewProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discard{}))
	b.Cleanup(func() { _ = on.Shutdown(context.Background()) })
	cases := []struct {
		name  string
		calls bool // false: the loop's own work only (the result's headers), for reference
		tp    trace.TracerProvider
	}{
		{"none", false, nil},
		{"off", true, nil},
		{"on", true, on},
	}
	request := nats.Header{}
	request.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	request.Set("Nats-Msg-Id", "7b3e4a52-7c55-4d8c-9b44-0a2f3f1f6a10")
	stored := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var seq uint64
			for b.Loop() {
				seq++
				result := &nats.Msg{Subject: "provisioner.results.source_created.7b3e4a52-7c55-4d8c-9b44-0a2f3f1f6a10", Header: nats.Header{}}
				result.Header.Set("Nats-Msg-Id", "7b3e4a52:source_created:"+strconv.FormatUint(seq, 10))
				if !tc.calls {
					continue
				}
				ctx, p := tracing.StartProcess(context.Background(), tc.tp, tracing.Delivery{
					Subject: "provisioner.requests.credentials.submitted", Header: request, BodySize: 240,
					Stream: "PROVISIONER_REQUESTS", Sequence: seq, Stored: stored, Consumer: "provisioner", Number: 1,
				})
				p.SetRequest("7b3e4a52-7c55-4d8c-9b44-0a2f3f1f6a10", "acme")
				_ = tracing.LogAttrs(ctx)
				_, claim := tracing.StartLedger(ctx, "claim")
				claim.End(nil, "")
				_, fetch := tracing.StartSecretFetch(ctx, "file")
				fetch.End(nil, "")
				_, complete := tracing.StartLedger(ctx, "complete")
				complete.End(nil, "")
				_, pub := tracing.StartPublish(ctx, nil, result, "7b3e4a52-7c55-4d8c-9b44-0a2f3f1f6a10")
				pub.End(nil, "")
				p.End("created", "")
			}
		})
	}
}
