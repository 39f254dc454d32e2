package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// WorkerSpec is how every worker process is started.
type WorkerSpec struct {
	Bin  string
	Args []string
	Env  []string // added to the soak's environment
	// LogDir receives one log file per worker incarnation: worker-<n>.<incarnation>.log.
	LogDir string
}

// Workers supervises a fixed number of worker processes: it starts them, SIGKILLs and restarts
// them on demand, restarts any that exits on its own (and counts it), and stops them all at the end.
type Workers struct {
	spec   WorkerSpec
	logger *slog.Logger

	mu         sync.Mutex
	procs      []*process
	logs       []string
	stopping   bool
	unexpected []string // exits nobody asked for
	wg         sync.WaitGroup
}

type process struct {
	n, incarnation int
	cmd            *exec.Cmd
	log            *os.File
	done           chan struct{}
	killed         bool // an exit we caused
	err            error
}

// StartWorkers starts n workers.
func StartWorkers(spec WorkerSpec, n int, logger *slog.Logger) (*Workers, error) {
	w := &Workers{spec: spec, logger: logger, procs: make([]*process, n)}
	for i := range n {
		if err := w.start(i); err != nil {
			w.Stop(5 * time.Second)
			return nil, err
		}
	}
	return w, nil
}

// start starts worker i's next incarnation; the caller must not hold mu.
func (w *Workers) start(i int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return nil
	}
	incarnation := 0
	if old := w.procs[i]; old != nil {
		incarnation = old.incarnation + 1
	}
	path := filepath.Join(w.spec.LogDir, fmt.Sprintf("worker-%d.%d.log", i, incarnation))
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("worker %d log: %w", i, err)
	}
	cmd := exec.Command(w.spec.Bin, w.spec.Args...)
	cmd.Env = append(os.Environ(), w.spec.Env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("start worker %d: %w", i, err)
	}
	p := &process{n: i, incarnation: incarnation, cmd: cmd, log: f, done: make(chan struct{})}
	w.procs[i] = p
	w.logs = append(w.logs, path)
	w.wg.Add(1)
	go w.wait(p)
	w.logger.Debug("worker started", "worker", i, "incarnation", incarnation, "pid", cmd.Process.Pid)
	return nil
}

// wait reaps p and restarts it if it died on its own.
func (w *Workers) wait(p *process) {
	defer w.wg.Done()
	p.err = p.cmd.Wait()
	_ = p.log.Close()
	close(p.done)
	w.mu.Lock()
	restart := !p.killed && !w.stopping
	if restart {
		msg := fmt.Sprintf("worker %d (pid %d, log %s) exited on its own: %v", p.n, p.cmd.Process.Pid, p.log.Name(), p.err)
		w.unexpected = append(w.unexpected, msg)
		w.logger.Warn("worker exited on its own; restarting it", "worker", p.n, "error", p.err, "log", p.log.Name())
	}
	w.mu.Unlock()
	if restart {
		time.Sleep(500 * time.Millisecond) // as a supervisor would, not in a tight loop
		if err := w.start(p.n); err != nil {
			w.logger.Error("could not restart worker", "worker", p.n, "error", err)
		}
	}
}

// Kill SIGKILLs worker i, waits until it is gone, and starts it again after pause.
func (w *Workers) Kill(ctx context.Context, i int, pause time.Duration) error {
	w.mu.Lock()
	p := w.procs[i]
	if p == nil || w.stopping {
		w.mu.Unlock()
		return errors.New("worker not running")
	}
	p.killed = true
	w.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill worker %d: %w", i, err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.logger.Info("worker killed", "worker", i, "incarnation", p.incarnation, "pid", p.cmd.Process.Pid)
	select {
	case <-time.After(pause):
	case <-ctx.Done():
		return ctx.Err()
	}
	return w.start(i)
}

// Stop sends SIGTERM to every worker and waits up to grace for them to drain, then SIGKILLs
// what is left. It returns the exits that were not clean.
func (w *Workers) Stop(grace time.Duration) []string {
	w.mu.Lock()
	w.stopping = true
	procs := append([]*process(nil), w.procs...)
	w.mu.Unlock()
	var unclean []string
	for _, p := range procs {
		if p != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, p := range procs {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
			if p.err != nil && !p.killed {
				unclean = append(unclean, fmt.Sprintf("worker %d (log %s) did not exit cleanly on SIGTERM: %v", p.n, p.log.Name(), p.err))
			}
		case <-ctx.Done():
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			unclean = append(unclean, fmt.Sprintf("worker %d (log %s) did not drain within %s and was killed", p.n, p.log.Name(), grace))
		}
	}
	w.wg.Wait()
	return unclean
}

// Unexpected lists the exits nobody asked for.
func (w *Workers) Unexpected() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.unexpected...)
}

// Logs lists every log file written, oldest first.
func (w *Workers) Logs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.logs...)
}
