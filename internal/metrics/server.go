package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves /metrics, /healthz and /readyz on its own listener, apart from any API.
type Server struct {
	addr   string
	logger *slog.Logger
	srv    *http.Server

	mu      sync.Mutex
	started bool
	served  chan struct{} // closed when Serve has returned
}

// NewServer returns a server for addr (host:port; ":0" picks a free port) that serves reg at /metrics
// (OpenMetrics when the scraper asks for it, else the Prometheus text format), 200 "ok" at /healthz while
// the process runs, and at /readyz 200 "ok" when every condition of h holds, else 503 with one failing
// condition per line. A nil logger discards.
func NewServer(addr string, reg *prometheus.Registry, h *Health, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		Registry:          reg, // counts failed scrapes in promhttp_metric_handler_errors_total
		ErrorLog:          promLogger{logger},
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, failing := h.Ready()
		if !ready {
			writeText(w, http.StatusServiceUnavailable, strings.Join(failing, "\n")+"\n")
			return
		}
		writeText(w, http.StatusOK, "ok\n")
	})
	return &Server{
		addr:   addr,
		logger: logger,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Start binds the address now, so a bad or busy address fails here, and serves in the background until
// Shutdown. It returns the bound address (the chosen port when addr ends in ":0").
func (s *Server) Start() (addr string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return "", errors.New("metrics server: already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			err = opErr.Err // "bind: address already in use", without naming the address twice
		}
		return "", fmt.Errorf("metrics server: cannot listen on %s (--metrics-addr): %w", s.addr, err)
	}
	s.started = true
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			// Nobody waits on this goroutine's result, so the log line is where the error goes.
			s.logger.Error("metrics server stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return ln.Addr().String(), nil
}

// Shutdown stops accepting connections and waits for the requests being served, or for ctx to end.
// It is a no-op before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started, served := s.started, s.served
	s.mu.Unlock()
	if !started {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("metrics server: shutdown: %w", err)
	}
	select {
	case <-served:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("metrics server: shutdown: %w", ctx.Err())
	}
}

// promLogger routes promhttp's error log (failed gathers, failed writes) to slog.
type promLogger struct{ logger *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.logger.Error("metrics: serving /metrics", "error", fmt.Sprint(v...))
}
