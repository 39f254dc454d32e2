// Package natsembed runs a nats-server with JetStream inside the process: the default broker of
// `provisioner run` when no NATS URL is configured, of `provisioner dev`, and of every test.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config describes an embedded server.
type Config struct {
	// Host and Port to listen on; Port -1 picks a random free port (tests), 0 means 4222.
	Host string
	Port int
	// StoreDir is JetStream's directory; it persists across restarts.
	StoreDir string
	// ServerName names the server in logs and cluster info; default "provisioner-embedded".
	ServerName string
	// Logs turns on the server's own log lines (noisy; off by default).
	Logs bool
	// SyncInterval is how often JetStream fsyncs its files; 0 = the server's default (2m). Writes
	// reach the operating system at once either way: a crash of the process loses nothing, a power
	// loss (or kernel crash) loses what was written since the last fsync — up to SyncInterval of
	// acknowledged requests, results and ledger entries.
	SyncInterval time.Duration
	// SyncAlways fsyncs every write before it is acknowledged: nothing acknowledged is lost to a
	// power loss, at the cost of one fsync per write (see README, "Durability").
	SyncAlways bool
}

// DefaultSyncInterval is nats-server's own default fsync interval.
const DefaultSyncInterval = 2 * time.Minute

// Server is a running embedded nats-server.
type Server struct {
	srv *server.Server
}

// Start starts a server and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsembed: store directory is required")
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	name := cfg.ServerName
	if name == "" {
		name = "provisioner-embedded"
	}
	opts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		// a worker publishes results and dead letters synchronously; keep the write path tight
		MaxPayload: 1 << 20,
	}
	if cfg.SyncAlways {
		opts.SyncAlways = true
		opts.SyncInterval = DefaultSyncInterval
	} else if cfg.SyncInterval > 0 {
		opts.SyncInterval = cfg.SyncInterval
	}
	if !cfg.Logs {
		opts.NoLog = true
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if cfg.Logs {
		srv.ConfigureLogger()
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("natsembed: server did not become ready within 30s")
	}
	return &Server{srv: srv}, nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Running reports whether the server is still up.
func (s *Server) Running() bool { return s.srv.Running() }

// Port is the bound client port.
func (s *Server) Port() int {
	if a, ok := s.srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Sync reports the fsync policy JetStream runs with.
func (s *Server) Sync() (always bool, interval time.Duration) {
	jc := s.srv.JetStreamConfig()
	if jc == nil {
		return false, 0
	}
	return jc.SyncAlways, jc.SyncInterval
}
