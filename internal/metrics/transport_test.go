package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/metrics"
)

type operationKey struct{}

func withOperation(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, operationKey{}, op)
}

func operationFrom(ctx context.Context) string {
	op, _ := ctx.Value(operationKey{}).(string)
	return op
}

// statusServer answers every request with the status in its ?status= query.
func statusServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, err := strconv.Atoi(r.URL.Query().Get("status"))
		if err != nil {
			status = http.StatusOK
		}
		if status >= 300 && status < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestInstrumentTransportCountsByOperationAndStatusClass(t *testing.T) {
	srv := statusServer(t)
	tests := []struct {
		name      string
		operation string
		url       string
		wantOp    string
		wantCode  string
		timed     bool // a response came back, so the duration is observed
	}{
		{"ok", "connectors_create", srv.URL + "?status=200", "connectors_create", "2xx", true},
		{"created", "connectors_create", srv.URL + "?status=201", "connectors_create", "2xx", true},
		{"redirect not followed", "connectors_get", srv.URL + "?status=302", "connectors_get", "3xx", true},
		{"not found", "connectors_get", srv.URL + "?status=404", "connectors_get", "4xx", true},
		{"rate limited", "scoped_token", srv.URL + "?status=429", "scoped_token", "4xx", true},
		{"unavailable", "connectors_list", srv.URL + "?status=503", "connectors_list", "5xx", true},
		{"connection refused", "token", "http://" + closedAddr(t) + "/", "token", "error", false},
		{"no operation in context", "", srv.URL, metrics.OtherLabel, "2xx", true},
		{"unlisted operation", "acme-workspace", srv.URL, metrics.OtherLabel, "2xx", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newMetrics(t, nil)
			client := &http.Client{
				Transport: m.InstrumentTransport(http.DefaultTransport.(*http.Transport).Clone(), operationFrom),
				CheckRedirect: func(*http.Request, []*http.Request) error {
					return http.ErrUseLastResponse
				},
			}
			ctx := withOperation(t.Context(), tt.operation)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			if tt.wantCode == "error" && err == nil {
				t.Fatalf("request succeeded, want a transport error")
			}

			if got := sample(t, reg, "provisioner_airbyte_requests_total", "operation", tt.wantOp, "code", tt.wantCode); got != 1 {
				t.Errorf("airbyte_requests_total{operation=%q,code=%q} = %v, want 1", tt.wantOp, tt.wantCode, got)
			}
			wantTimed := 0.0
			if tt.timed {
				wantTimed = 1
			}
			if got := sample(t, reg, "provisioner_airbyte_request_duration_seconds", "operation", tt.wantOp); got != wantTimed {
				t.Errorf("airbyte_request_duration_seconds{operation=%q} count = %v, want %v", tt.wantOp, got, wantTimed)
			}
			if got := sample(t, reg, "provisioner_airbyte_requests_in_flight"); got != 0 {
				t.Errorf("in flight after the call = %v, want 0", got)
			}
			assertLabelsClosed(t, reg)
		})
	}
}

func TestInstrumentTransportInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)

	m, reg := newMetrics(t, nil)
	client := &http.Client{Transport: m.InstrumentTransport(http.DefaultTransport.(*http.Transport).Clone(), operationFrom)}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			req, err := http.NewRequestWithContext(withOperation(t.Context(), "connectors_list"), http.MethodGet, srv.URL, nil)
			if err != nil {
				errs <- err
				return
			}
			resp, err := client.Do(req)
			if err == nil {
				err = resp.Body.Close()
			}
			errs <- err
		}()
	}
	<-entered
	<-entered
	if got := sample(t, reg, "provisioner_airbyte_requests_in_flight"); got != 2 {
		t.Errorf("in flight while the server holds both calls = %v, want 2", got)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := sample(t, reg, "provisioner_airbyte_requests_in_flight"); got != 0 {
		t.Errorf("in flight after = %v, want 0", got)
	}
	if got := sample(t, reg, "provisioner_airbyte_requests_total", "operation", "connectors_list", "code", "2xx"); got != 2 {
		t.Errorf("calls counted = %v, want 2", got)
	}
}

// roundTripperFunc is a transport that answers without the network, as test transports do.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestInstrumentTransportToleratesResponsesWithoutRequest(t *testing.T) {
	errDial := errors.New("dial refused")
	tests := []struct {
		name     string
		next     roundTripperFunc
		wantCode string
	}{
		{"response without Request", func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusAccepted, Body: http.NoBody}, nil
		}, "2xx"},
		{"error", func(*http.Request) (*http.Response, error) { return nil, errDial }, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newMetrics(t, nil)
			rt := m.InstrumentTransport(tt.next, operationFrom)
			req, err := http.NewRequestWithContext(withOperation(t.Context(), "connectors_delete"), http.MethodDelete, "http://airbyte.invalid/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := rt.RoundTrip(req)
			if tt.wantCode == "error" {
				if !errors.Is(err, errDial) {
					t.Fatalf("err = %v, want the transport's error unchanged", err)
				}
			} else if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("RoundTrip = %v, %v", resp, err)
			}
			if got := sample(t, reg, "provisioner_airbyte_requests_total", "operation", "connectors_delete", "code", tt.wantCode); got != 1 {
				t.Errorf("count = %v, want 1", got)
			}
		})
	}
}

// A slow response is timed; the histogram's sum is at least the server's delay.
func TestInstrumentTransportObservesDuration(t *testing.T) {
	const delay = 20 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { time.Sleep(delay) }))
	t.Cleanup(srv.Close)
	m, reg := newMetrics(t, nil)
	client := &http.Client{Transport: m.InstrumentTransport(http.DefaultTransport.(*http.Transport).Clone(), operationFrom)}
	req, err := http.NewRequestWithContext(withOperation(t.Context(), "workspaces_get"), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	for _, s := range family(t, reg, "provisioner_airbyte_request_duration_seconds").GetMetric() {
		for _, lp := range s.GetLabel() {
			if lp.GetValue() == "workspaces_get" {
				if sum := s.GetHistogram().GetSampleSum(); sum < delay.Seconds() {
					t.Errorf("duration sum = %vs, want >= %vs", sum, delay.Seconds())
				}
				return
			}
		}
	}
	t.Fatal("no workspaces_get series")
}
