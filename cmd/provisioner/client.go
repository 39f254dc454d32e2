package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
)

// clientFlags are the connection settings of the commands that talk to a running deployment
// (publish, results, dlq); they read the same PROVISIONER_* variables as run.
type clientFlags struct {
	cfg config.Config
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	c.cfg = config.Default()
	c.cfg.NATSURL = "nats://127.0.0.1:4222"
	fs.StringVar(&c.cfg.NATSURL, "nats-url", c.cfg.NATSURL, "NATS server URL")
	fs.StringVar(&c.cfg.NATSCreds, "nats-creds", "", "NATS credentials file")
	fs.StringVar(&c.cfg.NATSUser, "nats-user", "", "NATS user")
	fs.Var(secretFlagOf(&c.cfg.NATSPassword), "nats-password", "NATS password")
	fs.Var(secretFlagOf(&c.cfg.NATSToken), "nats-token", "NATS token")
	fs.StringVar(&c.cfg.SubjectPrefix, "subject-prefix", c.cfg.SubjectPrefix, "prefix of every subject")
	fs.StringVar(&c.cfg.ResultsStream, "results-stream", c.cfg.ResultsStream, "stream of results")
	fs.StringVar(&c.cfg.DLQStream, "dlq-stream", c.cfg.DLQStream, "stream of dead letters")
}

// parse applies env then flags.
func (c *clientFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := c.cfg.Parse(fs, args, nil); err != nil {
		if err == flag.ErrHelp {
			return err
		}
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

// followResults prints every result published from now on (or from the start with all) until ctx ends.
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
	cc, err := cons.Consume(func(m jetstream.Msg) { printResult(out, m.Data(), asJSON) })
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}
