package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
)

// replica is one running worker.
type replica interface {
	// cpu is the CPU time the replica has used so far (ok false in-process, where it cannot be told
	// apart from the rest of the process).
	cpu() (d time.Duration, ok bool, err error)
	// peakRSS is the replica's resident high-water mark (ok false in-process).
	peakRSS() (bytes uint64, ok bool, err error)
	// stop drains the replica and waits for it to exit.
	stop() error
}

// inProcess is a worker run by app.Run in this process.
type inProcess struct {
	cancel context.CancelFunc
	done   chan error
}

func startInProcess(ctx context.Context, cfg config.Config, owner string, logger *slog.Logger) (*inProcess, error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &inProcess{cancel: cancel, done: make(chan error, 1)}
	started := make(chan struct{})
	go func() {
		r.done <- app.Run(rctx, cfg, app.Options{
			Logger: logger.With("replica", owner), Registry: prometheus.NewRegistry(), Owner: owner,
			UserAgent: "provisioner-bench", Started: func(app.Endpoints) { close(started) },
		})
	}()
	select {
	case <-started:
		return r, nil
	case err := <-r.done:
		cancel()
		return nil, fmt.Errorf("replica %s: %w", owner, err)
	case <-ctx.Done():
		cancel()
		<-r.done
		return nil, fmt.Errorf("replica %s: %w", owner, context.Cause(ctx))
	}
}

func (r *inProcess) cpu() (time.Duration, bool, error) { return 0, false, nil }
func (r *inProcess) peakRSS() (uint64, bool, error)    { return 0, false, nil }
func (r *inProcess) stop() error                       { r.cancel(); return <-r.done }

// subprocess is a worker run as `<binary> run`, configured through PROVISIONER_* variables (so that
// no secret appears in a process listing).
type subprocess struct {
	cmd  *exec.Cmd
	done chan error
}

// subprocessStopTimeout bounds a replica's drain after SIGTERM before it is killed.
const subprocessStopTimeout = 30 * time.Second

func startSubprocess(ctx context.Context, binary string, cfg config.Config, owner string, stderr io.Writer) (*subprocess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg.MetricsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(binary, "run")
	cmd.Env = append(withoutProvisionerEnv(os.Environ()), workerEnv(cfg)...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("replica %s: %w", owner, err)
	}
	p := &subprocess{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	if err := p.awaitReady(ctx, "http://"+cfg.MetricsAddr+"/readyz"); err != nil {
		_ = p.stop()
		return nil, fmt.Errorf("replica %s: %w", owner, err)
	}
	return p, nil
}

// awaitReady polls /readyz until the worker has bound the consumer.
func (p *subprocess) awaitReady(ctx context.Context, readyz string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyz, nil); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		select {
		case err := <-p.done:
			p.done <- err // stop reads it again
			return fmt.Errorf("exited before it was ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", context.Cause(ctx))
		case <-tick.C:
		}
	}
}

func (p *subprocess) cpu() (time.Duration, bool, error) {
	d, err := processCPU(p.cmd.Process.Pid)
	return d, true, err
}

func (p *subprocess) peakRSS() (uint64, bool, error) {
	b, err := peakRSS(p.cmd.Process.Pid)
	return b, true, err
}

func (p *subprocess) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(subprocessStopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("replica pid %d did not drain within %s; killed", p.cmd.Process.Pid, subprocessStopTimeout)
	}
}

// workerEnv is the environment that configures `provisioner run` like cfg.
func workerEnv(cfg config.Config) []string {
	kv := map[string]string{
		"nats-url":              cfg.NATSURL,
		"airbyte-url":           cfg.AirbyteURL,
		"airbyte-client-id":     cfg.AirbyteClientID,
		"airbyte-client-secret": cfg.AirbyteClientSecret.Reveal(),
		"secrets-dir":           cfg.SecretsDir,
		"secret-path-policy":    cfg.SecretPathPolicy,
		"concurrency":           strconv.Itoa(cfg.Concurrency),
		"max-ack-pending":       strconv.Itoa(cfg.MaxAckPending),
		"lookup":                cfg.Lookup,
		"stream-replicas":       strconv.Itoa(cfg.StreamReplicas),
		"metrics-addr":          cfg.MetricsAddr,
		"log-format":            "json",
		"log-level":             cfg.LogLevel,
	}
	env := make([]string, 0, len(kv))
	for k, v := range kv {
		env = append(env, config.EnvName(k)+"="+v)
	}
	return env
}

// withoutProvisionerEnv drops the PROVISIONER_* variables of this process, so that only the
// benchmark's configuration reaches the replicas.
func withoutProvisionerEnv(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, config.EnvPrefix) {
			out = append(out, e)
		}
	}
	return out
}

// freePort asks the kernel for a free loopback port. Another process could take it before the
// replica binds it; the replica then fails to start and the benchmark says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// stopAll stops every replica and reports every failure.
func stopAll(rs []replica) error {
	errs := make([]error, len(rs))
	done := make(chan struct{})
	for i, r := range rs {
		go func() { errs[i] = r.stop(); done <- struct{}{} }()
	}
	for range rs {
		<-done
	}
	return errors.Join(errs...)
}
