// Package natsclustertest runs a 3-node (or n-node) NATS cluster with JetStream for tests and the
// cluster chaos soak: real nats-server processes built from the module cache (the version go.mod
// pins, no download) that can be SIGKILLed and restarted on the same ports and store, or in-process
// servers from the same module where a test does not need to kill a process.
package natsclustertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Node is one server of a cluster.
type Node struct {
	Name        string
	Port        int // client port
	ClusterPort int
	StoreDir    string
}

// URL is the node's client URL.
func (n *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port) }

// URLs joins the client URLs of nodes, comma-separated, as --nats-url takes them.
func URLs(nodes []*Node) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// freePorts reserves n loopback ports by listening on them, then releases them for the servers.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func newNodes(n int, storeRoot func(i int) string) ([]*Node, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, fmt.Errorf("natsclustertest: free ports: %w", err)
	}
	nodes := make([]*Node, n)
	for i := range n {
		nodes[i] = &Node{Name: fmt.Sprintf("n%d", i+1), Port: ports[2*i], ClusterPort: ports[2*i+1], StoreDir: storeRoot(i)}
	}
	return nodes, nil
}

// waitJetStream waits until the cluster can place a stream on every one of its n nodes (it has a
// meta leader and knows all its peers), or ctx ends.
func waitJetStream(ctx context.Context, url string, n int) error {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var last error
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.CreateStream(callCtx, jetstream.StreamConfig{Name: "natsclustertest_ready", Replicas: n, Storage: jetstream.MemoryStorage})
		if err == nil {
			err = js.DeleteStream(callCtx, "natsclustertest_ready")
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsclustertest: jetstream not ready: %w", errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StreamLeader is the name of the server leading a stream (a KV bucket is stream "KV_<bucket>").
func StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", stream)
	}
	return info.Cluster.Leader, nil
}

// ConsumerLeader is the name of the server leading a consumer.
func ConsumerLeader(ctx context.Context, js jetstream.JetStream, stream, consumer string) (string, error) {
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return "", err
	}
	info := c.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("consumer %s has no leader", consumer)
	}
	return info.Cluster.Leader, nil
}
