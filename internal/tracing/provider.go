package tracing

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Provider is a process's tracer provider and what it takes to flush it. The zero of its
// TracerProvider is not used: Off returns the no-op provider.
type Provider struct {
	trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil when off
}

// Off is tracing switched off: a no-op provider.
func Off() *Provider { return &Provider{TracerProvider: noop.NewTracerProvider()} }

// Enabled reports whether spans are recorded at all.
func (p *Provider) Enabled() bool { return p != nil && p.sdk != nil }

// ForceFlush exports every ended span not exported yet.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}

// Shutdown flushes and stops the provider; spans started afterwards are dropped.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}

// NewProvider returns an SDK provider with the provisioner's ID generator (which the redelivery
// links rely on) and parent-based sampling (OTEL_TRACES_SAMPLER, read by the SDK, may change it),
// plus opts: span processors or exporters, a resource, a sampler.
func NewProvider(opts ...sdktrace.TracerProviderOption) *Provider {
	all := append([]sdktrace.TracerProviderOption{sdktrace.WithIDGenerator(idGenerator{})}, opts...)
	sdk := sdktrace.NewTracerProvider(all...)
	return &Provider{TracerProvider: sdk, sdk: sdk}
}

// Env reads an environment variable (os.Getenv in a process; a map in tests).
type Env func(string) string

// On reports whether the environment asks for traces: OTEL_TRACES_EXPORTER is set to something
// other than "none", or an OTLP endpoint is set without it; and OTEL_SDK_DISABLED is not "true".
func On(env Env) bool {
	if strings.EqualFold(strings.TrimSpace(env("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch exp := strings.TrimSpace(env("OTEL_TRACES_EXPORTER")); exp {
	case "":
		return env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	default:
		return exp != "none"
	}
}

// Service names the process in the resource of its spans; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it.
type Service struct {
	Name, Version, InstanceID string
}

// FromEnv builds the process's provider from the standard OTEL_* variables of its environment: the exporter chosen by
// OTEL_TRACES_EXPORTER (otlp, console, none) through autoexport, OTLP settings from OTEL_EXPORTER_OTLP_*,
// the sampler from OTEL_TRACES_SAMPLER (default parent-based, always on for roots), batching from
// OTEL_BSP_*. Tracing is off (a no-op provider, nothing exported) unless On(env). extra processors
// (the dev span-tree printer) are added beside the exporter; with extra processors the provider is
// on whatever the environment says.
func FromEnv(ctx context.Context, svc Service, extra ...sdktrace.SpanProcessor) (*Provider, error) {
	// autoexport and the SDK read the process's environment themselves; so does this
	env := Env(os.Getenv)
	var opts []sdktrace.TracerProviderOption
	if On(env) {
		exp, err := autoexport.NewSpanExporter(ctx, autoexport.WithFallbackSpanExporter(otlpFallback(env)))
		if err != nil {
			return nil, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER: %w", err)
		}
		if !autoexport.IsNoneSpanExporter(exp) {
			opts = append(opts, sdktrace.WithBatcher(exp))
		}
	}
	for _, sp := range extra {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	if len(opts) == 0 {
		return Off(), nil
	}
	res, err := newResource(ctx, svc)
	if err != nil {
		return nil, err
	}
	return NewProvider(append(opts, sdktrace.WithResource(res))...), nil
}

// otlpFallback is the exporter when OTEL_TRACES_EXPORTER is unset but an OTLP endpoint is set: OTLP
// over the protocol OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL names, as autoexport's own "otlp".
func otlpFallback(env Env) func(context.Context) (sdktrace.SpanExporter, error) {
	return func(ctx context.Context) (sdktrace.SpanExporter, error) {
		proto := cmp.Or(env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), env("OTEL_EXPORTER_OTLP_PROTOCOL"), "http/protobuf")
		switch proto {
		case "grpc":
			return otlptracegrpc.New(ctx)
		case "http/protobuf":
			return otlptracehttp.New(ctx)
		}
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", proto)
	}
}

func newResource(ctx context.Context, svc Service) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", svc.Name)}
	if svc.Version != "" {
		attrs = append(attrs, attribute.String("service.version", svc.Version))
	}
	if svc.InstanceID != "" {
		attrs = append(attrs, attribute.String("service.instance.id", svc.InstanceID))
	}
	// later detectors win: the environment overrides what the process says of itself
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}
