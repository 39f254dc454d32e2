package natsclustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServerPackage is the nats-server main package; it is built at the version go.mod pins, from the
// module cache (go build downloads nothing the module does not already require).
const ServerPackage = "github.com/nats-io/nats-server/v2"

// BuildServer builds the nats-server binary into dir and returns its path. It runs `go build` in
// the current directory, which must be inside this module.
func BuildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ServerPackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("natsclustertest: build %s: %w: %s", ServerPackage, err, out)
	}
	return bin, nil
}

// ProcessConfig configures a cluster of nats-server processes.
type ProcessConfig struct {
	Nodes int    // default 3
	Dir   string // required: holds the binary (unless Bin is set), configs and stores
	Bin   string // a nats-server binary; empty builds one into Dir
	// SyncInterval is JetStream's sync_interval ("" = the server's default, "always" = fsync every
	// write).
	SyncInterval string
	// Logs receives the servers' output (nil = discarded).
	Logs io.Writer
}

// Processes is a cluster of real nats-server processes. A node can be SIGKILLed and started again
// on the same ports and store.
type Processes struct {
	Nodes []*Node
	cfg   ProcessConfig
	mu    sync.Mutex
	cmds  []*exec.Cmd
	exits []chan struct{}
}

// StartProcesses starts the cluster and waits until JetStream answers (bounded by ctx).
func StartProcesses(ctx context.Context, cfg ProcessConfig) (*Processes, error) {
	if cfg.Dir == "" {
		return nil, errors.New("natsclustertest: a directory is required")
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = 3
	}
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	if cfg.Bin == "" {
		bin, err := BuildServer(ctx, cfg.Dir)
		if err != nil {
			return nil, err
		}
		cfg.Bin = bin
	}
	nodes, err := newNodes(cfg.Nodes, func(i int) string { return filepath.Join(cfg.Dir, fmt.Sprintf("n%d", i+1), "store") })
	if err != nil {
		return nil, err
	}
	c := &Processes{Nodes: nodes, cfg: cfg, cmds: make([]*exec.Cmd, len(nodes)), exits: make([]chan struct{}, len(nodes))}
	for i := range nodes {
		if err := c.writeConfig(i); err != nil {
			return nil, err
		}
		if err := c.Start(ctx, i); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := waitJetStream(ctx, c.URL(), len(c.Nodes)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Processes) configPath(i int) string {
	return filepath.Join(c.cfg.Dir, c.Nodes[i].Name, "nats.conf")
}

func (c *Processes) writeConfig(i int) error {
	n := c.Nodes[i]
	var routes []string
	for _, o := range c.Nodes {
		if o != n {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.ClusterPort))
		}
	}
	sync := ""
	if c.cfg.SyncInterval != "" {
		sync = "\n  sync_interval: " + c.cfg.SyncInterval
	}
	conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q%s
}
cluster {
  name: provisioner-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.Name, n.Port, n.StoreDir, sync, n.ClusterPort, strings.Join(routes, ", "))
	if err := os.MkdirAll(n.StoreDir, 0o750); err != nil {
		return err
	}
	return os.WriteFile(c.configPath(i), []byte(conf), 0o600)
}

// Start starts node i (again, after Kill) and waits until it accepts connections.
func (c *Processes) Start(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmds[i] != nil {
		return fmt.Errorf("natsclustertest: %s is running", c.Nodes[i].Name)
	}
	cmd := exec.Command(c.cfg.Bin, "-c", c.configPath(i))
	cmd.Stdout, cmd.Stderr = c.cfg.Logs, c.cfg.Logs
	cmd.SysProcAttr = serverProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("natsclustertest: start %s: %w", c.Nodes[i].Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.cmds[i], c.exits[i] = cmd, exited
	addr := fmt.Sprintf("127.0.0.1:%d", c.Nodes[i].Port)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-exited:
			c.cmds[i] = nil
			return fmt.Errorf("natsclustertest: %s exited at start", c.Nodes[i].Name)
		case <-ctx.Done():
			return fmt.Errorf("natsclustertest: %s does not accept connections: %w", c.Nodes[i].Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill SIGKILLs node i and waits until it is gone.
func (c *Processes) Kill(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd := c.cmds[i]
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("natsclustertest: kill %s: %w", c.Nodes[i].Name, err)
	}
	<-c.exits[i]
	c.cmds[i] = nil
	return nil
}

// Running reports whether node i runs.
func (c *Processes) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmds[i] != nil
}

// Index is the index of the node called name, or -1.
func (c *Processes) Index(name string) int {
	for i, n := range c.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// URL lists every node's client URL.
func (c *Processes) URL() string { return URLs(c.Nodes) }

// Close kills every node.
func (c *Processes) Close() {
	for i := range c.Nodes {
		_ = c.Kill(i)
	}
}

// StartProcessesT starts an n-node cluster of nats-server processes for a test, in a temporary
// directory, and kills it when the test ends.
func StartProcessesT(t testing.TB, n int) *Processes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := StartProcesses(ctx, ProcessConfig{Nodes: n, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Connect opens a client connection to the cluster, closed at the end of the test.
func (c *Processes) Connect(t testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return connect(t, c.URL(), opts...)
}
