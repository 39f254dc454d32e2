// Package natsembedtest starts real embedded NATS servers for tests: random port, temporary
// JetStream directory, stopped when the test ends.
package natsembedtest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/natsembed"
)

// Server is a test server that can be restarted on the same port and store.
type Server struct {
	t   testing.TB
	cfg natsembed.Config
	srv *natsembed.Server
	URL string
}

// Start starts a server on a random loopback port with a temporary store.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, cfg: natsembed.Config{Port: -1, StoreDir: t.TempDir()}}
	s.start()
	// later restarts must reuse the port so clients can reconnect
	s.cfg.Port = s.srv.Port()
	t.Cleanup(func() {
		if s.srv != nil {
			s.srv.Shutdown()
		}
	})
	return s
}

func (s *Server) start() {
	s.t.Helper()
	srv, err := natsembed.Start(s.cfg)
	if err != nil {
		s.t.Fatalf("start nats: %v", err)
	}
	s.srv = srv
	s.URL = srv.ClientURL()
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Stop stops the server (Restart brings it back).
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
}

// Connect opens a client connection closed at the end of the test.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return Connect(t, s.URL, opts...)
}

// Connect opens a client connection to url (one server, or a cluster's comma-separated URLs),
// closed at the end of the test.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}
