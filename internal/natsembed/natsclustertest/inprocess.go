package natsclustertest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// InProcess is a cluster of nats-servers inside the test process. Nodes can be shut down and
// started again, not SIGKILLed (use Processes for that).
type InProcess struct {
	t       testing.TB
	Nodes   []*Node
	servers []*server.Server
}

// StartInProcess starts an n-node cluster with JetStream, each node on its own loopback ports and
// temporary store, and waits until JetStream answers. It is shut down when the test ends.
func StartInProcess(t testing.TB, n int) *InProcess {
	t.Helper()
	root := t.TempDir()
	nodes, err := newNodes(n, func(i int) string { return filepath.Join(root, fmt.Sprintf("n%d", i+1)) })
	if err != nil {
		t.Fatal(err)
	}
	c := &InProcess{t: t, Nodes: nodes, servers: make([]*server.Server, n)}
	t.Cleanup(c.shutdown)
	for i := range nodes {
		c.Start(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitJetStream(ctx, c.URL(), len(c.Nodes)); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *InProcess) options(n *Node) *server.Options {
	var routes []string
	for _, o := range c.Nodes {
		if o != n {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.ClusterPort))
		}
	}
	return &server.Options{
		ServerName: n.Name, Host: "127.0.0.1", Port: n.Port,
		JetStream: true, StoreDir: n.StoreDir, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: "provisioner-test", Host: "127.0.0.1", Port: n.ClusterPort},
		Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
	}
}

// Start starts node i (again, after Shutdown) on its ports and store.
func (c *InProcess) Start(i int) {
	c.t.Helper()
	srv, err := server.NewServer(c.options(c.Nodes[i]))
	if err != nil {
		c.t.Fatalf("start %s: %v", c.Nodes[i].Name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		c.t.Fatalf("%s did not accept connections", c.Nodes[i].Name)
	}
	c.servers[i] = srv
}

// Shutdown stops node i.
func (c *InProcess) Shutdown(i int) {
	if s := c.servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.servers[i] = nil
	}
}

// Index is the index of the node called name, or -1.
func (c *InProcess) Index(name string) int {
	for i, n := range c.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

func (c *InProcess) shutdown() {
	for i := range c.servers {
		c.Shutdown(i)
	}
}

// URL lists every node's client URL.
func (c *InProcess) URL() string { return URLs(c.Nodes) }

// Connect opens a client connection to the cluster, closed at the end of the test.
func (c *InProcess) Connect(t testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return connect(t, c.URL(), opts...)
}

func connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	return natsembedtest.Connect(t, url, opts...)
}
