package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
)

// clientFlags are the connection settings of the commands that talk to a running deployment
// (publish, results, dlq, doctor): the same NATS flags as run, TLS included, read from the same
// PROVISIONER_* variables.
type clientFlags struct {
	cfg config.Config
}

// Streams a client command may name with a flag; each command registers only those it uses.
const (
	requestsStreamFlag = "requests-stream"
	resultsStreamFlag  = "results-stream"
	dlqStreamFlag      = "dlq-stream"
)

func (c *clientFlags) register(fs *flag.FlagSet, streams ...string) {
	c.cfg = config.Default()
	c.cfg.NATSURL = "nats://127.0.0.1:4222"
	fs.StringVar(&c.cfg.NATSURL, "nats-url", c.cfg.NATSURL, "NATS server URL(s), comma-separated")
	fs.StringVar(&c.cfg.NATSCreds, "nats-creds", "", "NATS credentials file (user JWT and nkey seed)")
	fs.StringVar(&c.cfg.NATSUser, "nats-user", "", "NATS user")
	fs.Var(secretFlagOf(&c.cfg.NATSPassword), "nats-password", "NATS password")
	fs.Var(secretFlagOf(&c.cfg.NATSToken), "nats-token", "NATS token")
	fs.StringVar(&c.cfg.NATSTLSCA, "nats-tls-ca", "", "CA certificate file for NATS TLS")
	fs.StringVar(&c.cfg.NATSTLSCert, "nats-tls-cert", "", "client certificate file for NATS TLS")
	fs.StringVar(&c.cfg.NATSTLSKey, "nats-tls-key", "", "client key file for NATS TLS")
	fs.StringVar(&c.cfg.SubjectPrefix, "subject-prefix", c.cfg.SubjectPrefix, "prefix of every subject")
	for _, s := range streams {
		switch s {
		case requestsStreamFlag:
			fs.StringVar(&c.cfg.RequestsStream, requestsStreamFlag, c.cfg.RequestsStream, "stream of requests (a publish that lands elsewhere fails)")
		case resultsStreamFlag:
			fs.StringVar(&c.cfg.ResultsStream, resultsStreamFlag, c.cfg.ResultsStream, "stream of results")
		case dlqStreamFlag:
			fs.StringVar(&c.cfg.DLQStream, dlqStreamFlag, c.cfg.DLQStream, "stream of dead letters")
		}
	}
}

// parse applies env then flags, and checks the connection settings as run would.
func (c *clientFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := c.cfg.Parse(fs, args, nil); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if err := c.cfg.ValidateNATSClient(); err != nil {
		return usageError{err}
	}
	return nil
}

func (c *clientFlags) topology() consumer.Topology { return app.Topology(c.cfg) }

func (c *clientFlags) connect(stderr io.Writer) (*nats.Conn, jetstream.JetStream, error) {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := app.Connect(c.cfg, c.cfg.NATSURL, "provisioner-cli", logger, nil)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// client returns the app-side client on nc, for this deployment's subjects and streams.
func (c *clientFlags) client(nc *nats.Conn, opts ...client.Option) (*client.Client, error) {
	return client.New(nc, append([]client.Option{client.WithSubjectPrefix(c.cfg.SubjectPrefix),
		client.WithRequestsStream(c.cfg.RequestsStream), client.WithResultsStream(c.cfg.ResultsStream)}, opts...)...)
}

// followResults prints every result published from now on (or from the start with all) until ctx
// ends. An ordered consumer delivers each stored message once, in order, across reconnects; a verdict
// stored twice (re-published after the duplicate window) is printed once.
func followResults(ctx context.Context, js jetstream.JetStream, topo consumer.Topology, all, asJSON bool, out io.Writer) error {
	policy := jetstream.DeliverNewPolicy
	if all {
		policy = jetstream.DeliverAllPolicy
	}
	stream, err := js.Stream(ctx, topo.ResultsStream)
	if err != nil {
		return err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: policy})
	if err != nil {
		return err
	}
	seen := newVerdictSet(followMemory)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if seen.add(verdictKey(m.Data())) {
			printResult(out, m.Data(), asJSON)
		}
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

// followMemory is how many verdicts followResults remembers to drop a second copy of.
const followMemory = 1 << 16

// verdictKey identifies a verdict by its body: the same request, message and revision is the same
// verdict (a replayed dead letter's verdict has a higher revision). An unreadable body is its own key.
func verdictKey(data []byte) string {
	var r struct {
		RequestID string `json:"request_id"`
		Message   string `json:"message"`
		Revision  int    `json:"revision"`
	}
	if json.Unmarshal(data, &r) != nil || r.RequestID == "" {
		return string(data)
	}
	return r.RequestID + "\x00" + r.Message + "\x00" + strconv.Itoa(r.Revision)
}

// verdictSet remembers the last n keys added.
type verdictSet struct {
	keys  map[string]struct{}
	order []string
	next  int
}

func newVerdictSet(n int) *verdictSet {
	return &verdictSet{keys: make(map[string]struct{}, n), order: make([]string, n)}
}

// add reports whether key is new, and remembers it, forgetting the oldest key when full.
func (s *verdictSet) add(key string) bool {
	if _, ok := s.keys[key]; ok {
		return false
	}
	if old := s.order[s.next]; old != "" {
		delete(s.keys, old)
	}
	s.order[s.next] = key
	s.next = (s.next + 1) % len(s.order)
	s.keys[key] = struct{}{}
	return true
}
