package tracing

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/internal/tracing/natstrace"
)

// TreePrinter is a span processor that prints a compact tree of a trace's spans when a delivery
// reaches its verdict (a process span ends with an outcome other than retry): `provisioner dev
// --traces` shows traces without a collector. It keeps the spans of at most maxTraces traces.
type TreePrinter struct {
	mu     sync.Mutex
	w      io.Writer
	traces map[trace.TraceID][]sdktrace.ReadOnlySpan
	order  []trace.TraceID // oldest first, for eviction
}

const maxTraces = 1000

var _ sdktrace.SpanProcessor = (*TreePrinter)(nil)

// NewTreePrinter prints to w.
func NewTreePrinter(w io.Writer) *TreePrinter {
	return &TreePrinter{w: w, traces: map[trace.TraceID][]sdktrace.ReadOnlySpan{}}
}

// OnStart implements sdktrace.SpanProcessor.
func (p *TreePrinter) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor.
func (p *TreePrinter) OnEnd(s sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tid := s.SpanContext().TraceID()
	if _, ok := p.traces[tid]; !ok {
		if len(p.order) >= maxTraces {
			delete(p.traces, p.order[0])
			p.order = p.order[1:]
		}
		p.order = append(p.order, tid)
	}
	p.traces[tid] = append(p.traces[tid], s)
	if !verdict(s) {
		return
	}
	_, _ = io.WriteString(p.w, RenderTree(p.traces[tid]))
	// the spans stay: a redelivery of a request that was answered (a replay) prints the whole trace
}

// Shutdown implements sdktrace.SpanProcessor.
func (p *TreePrinter) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdktrace.SpanProcessor.
func (p *TreePrinter) ForceFlush(context.Context) error { return nil }

// verdict reports whether s is a process span whose delivery ended the request.
func verdict(s sdktrace.ReadOnlySpan) bool {
	if s.SpanKind() != trace.SpanKindConsumer {
		return false
	}
	for _, a := range s.Attributes() {
		if a.Key == AttrOutcome {
			return a.Value.AsString() != "retry"
		}
	}
	return false
}

// RenderTree renders spans (of one trace) as an indented tree, children in start order, each line
// with the span's name, duration and its telling attributes. Spans whose parent is not among spans
// are roots.
func RenderTree(spans []sdktrace.ReadOnlySpan) string {
	if len(spans) == 0 {
		return ""
	}
	byID := map[trace.SpanID]bool{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = true
	}
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if p := s.Parent().SpanID(); s.Parent().IsValid() && byID[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b sdktrace.ReadOnlySpan) int {
		return cmp.Or(a.StartTime().Compare(b.StartTime()), strings.Compare(a.Name(), b.Name()))
	}
	slices.SortFunc(roots, byStart)
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s\n", spans[0].SpanContext().TraceID())
	var walk func(s sdktrace.ReadOnlySpan, prefix string, last bool, depth int)
	walk = func(s sdktrace.ReadOnlySpan, prefix string, last bool, depth int) {
		branch, next := "├─ ", "│  "
		if last {
			branch, next = "└─ ", "   "
		}
		if depth == 0 {
			branch, next = "", ""
		}
		fmt.Fprintf(&b, "  %s%s%s %s%s\n", prefix, branch, s.Name(), formatDuration(s.EndTime().Sub(s.StartTime())), details(s))
		kids := children[s.SpanContext().SpanID()]
		slices.SortFunc(kids, byStart)
		for i, k := range kids {
			walk(k, prefix+next, i == len(kids)-1, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, "", true, 0)
	}
	return b.String()
}

// details are the attributes worth a glance, in a fixed order.
func details(s sdktrace.ReadOnlySpan) string {
	show := []struct {
		key   string
		label string
	}{
		{string(AttrRequestID), "request"},
		{string(AttrWorkspace), "workspace"},
		{string(natstrace.AttrDeliveryCount), "delivery"},
		{string(AttrOutcome), "outcome"},
		{string(AttrErrorCode), "code"},
		{string(AttrSecretBackend), "backend"},
		{string(AttrLedgerOutcome), "ledger"},
		{"http.response.status_code", "status"},
		{string(attrErrorType), "error"},
	}
	vals := map[string]string{}
	for _, a := range s.Attributes() {
		vals[string(a.Key)] = a.Value.String()
	}
	var b strings.Builder
	for _, k := range show {
		if v, ok := vals[k.key]; ok && !(k.key == string(attrErrorType) && vals[string(AttrErrorCode)] == v) {
			fmt.Fprintf(&b, " %s=%s", k.label, v)
		}
	}
	if n := len(s.Links()); n > 0 {
		fmt.Fprintf(&b, " links=%d", n)
	}
	return b.String()
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}
