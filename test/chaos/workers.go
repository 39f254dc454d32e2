package main

import (
	"bytes"
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
	// EnvOf, if set, adds to one worker's environment (every incarnation of it).
	EnvOf func(worker int) []string
	// LogDir receives one log file per worker incarnation: worker-<n>.<incarnation>.log.
	LogDir string
	// StartedMarker is a log text a worker writes once it is up; an exit before it is a failed
	// start-up, after it a crash.
	StartedMarker string
}

// Exit is a worker exit nobody asked for.
type Exit struct {
	Worker, Incarnation int
	Log                 string
	Err                 error
	// Started: the worker had come up (its log has the StartedMarker) before it exited.
	Started bool
	// LastLine is the last line of its log: usually why it exited.
	LastLine string
}

func (e Exit) String() string {
	what := "crashed"
	if !e.Started {
		what = "exited during start-up"
	}
	return fmt.Sprintf("worker %d.%d %s (%v; log %s): %s", e.Worker, e.Incarnation, what, e.Err, e.Log, e.LastLine)
}

// Workers supervises a fixed number of worker processes: it starts them, SIGKILLs and restarts
// them on demand, restarts any that exits on its own (and reports it), and stops them all at the end.
type Workers struct {
	spec   WorkerSpec
	logger *slog.Logger

	mu         sync.Mutex
	current    []*process // the live incarnation of each worker
	all        []*process // every incarnation ever started
	stopping   bool
	unexpected []Exit
	wg         sync.WaitGroup
}

type process struct {
	n, incarnation int
	cmd            *exec.Cmd
	logPath        string
	done           chan struct{}
	killed         bool // an exit the soak caused
	err            error
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// StartWorkers starts n workers.
func StartWorkers(spec WorkerSpec, n int, logger *slog.Logger) (*Workers, error) {
	w := &Workers{spec: spec, logger: logger, current: make([]*process, n)}
	for i := range n {
		if err := w.replace(i, nil); err != nil {
			w.Stop(5 * time.Second)
			return nil, err
		}
	}
	return w, nil
}

// Len is the number of workers.
func (w *Workers) Len() int { return len(w.current) }

// replace starts worker i's next incarnation, unless prev is no longer its current one (someone
// else replaced it already) or the workers are stopping.
func (w *Workers) replace(i int, prev *process) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping || w.current[i] != prev {
		return nil
	}
	incarnation := 0
	if prev != nil {
		incarnation = prev.incarnation + 1
	}
	path := filepath.Join(w.spec.LogDir, fmt.Sprintf("worker-%d.%d.log", i, incarnation))
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("worker %d log: %w", i, err)
	}
	cmd := exec.Command(w.spec.Bin, w.spec.Args...)
	cmd.Env = append(os.Environ(), w.spec.Env...)
	if w.spec.EnvOf != nil {
		cmd.Env = append(cmd.Env, w.spec.EnvOf(i)...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	_ = f.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("start worker %d: %w", i, err)
	}
	p := &process{n: i, incarnation: incarnation, cmd: cmd, logPath: path, done: make(chan struct{})}
	w.current[i] = p
	w.all = append(w.all, p)
	w.wg.Add(1)
	go w.reap(p)
	w.logger.Debug("worker started", "worker", i, "incarnation", incarnation, "pid", cmd.Process.Pid)
	return nil
}

// reap waits for p to exit and replaces it if it died on its own, as a supervisor would.
func (w *Workers) reap(p *process) {
	defer w.wg.Done()
	err := p.cmd.Wait()
	w.mu.Lock()
	p.err = err
	close(p.done)
	unexpected := !p.killed && !w.stopping
	w.mu.Unlock()
	if !unexpected {
		return
	}
	exit := Exit{Worker: p.n, Incarnation: p.incarnation, Log: p.logPath, Err: err}
	if b, rerr := os.ReadFile(p.logPath); rerr == nil {
		exit.Started = w.spec.StartedMarker != "" && bytes.Contains(b, []byte(w.spec.StartedMarker))
		lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
		exit.LastLine = string(lines[len(lines)-1])
	}
	w.mu.Lock()
	w.unexpected = append(w.unexpected, exit)
	w.mu.Unlock()
	w.logger.Warn("worker exited on its own; restarting it", "exit", exit.String())
	time.Sleep(500 * time.Millisecond) // not in a tight loop
	if err := w.replace(p.n, p); err != nil {
		w.logger.Error("could not restart worker", "worker", p.n, "error", err)
	}
}

// Kill SIGKILLs worker i (waiting first for it to be up, if it is being restarted), waits until
// it is gone, and starts its next incarnation after pause.
func (w *Workers) Kill(ctx context.Context, i int, pause time.Duration) error {
	var p *process
	for {
		w.mu.Lock()
		if w.stopping {
			w.mu.Unlock()
			return errors.New("workers are stopping")
		}
		if p = w.current[i]; !p.exited() {
			p.killed = true
			w.mu.Unlock()
			break
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
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
	return w.replace(i, p)
}

// Stop sends SIGTERM to every worker and waits up to grace for them to drain, then SIGKILLs
// what is left. It returns the exits that were not clean.
func (w *Workers) Stop(grace time.Duration) []string {
	w.mu.Lock()
	w.stopping = true
	procs := append([]*process(nil), w.all...)
	w.mu.Unlock()
	for _, p := range procs {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var unclean []string
	for _, p := range procs {
		select {
		case <-p.done:
		case <-ctx.Done():
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			unclean = append(unclean, fmt.Sprintf("worker %d.%d (log %s) did not drain within %s of SIGTERM and was killed", p.n, p.incarnation, p.logPath, grace))
			continue
		}
		w.mu.Lock()
		err, killed := p.err, p.killed
		w.mu.Unlock()
		if err != nil && !killed && !w.isUnexpected(p) {
			unclean = append(unclean, fmt.Sprintf("worker %d.%d (log %s) did not exit cleanly on SIGTERM: %v", p.n, p.incarnation, p.logPath, err))
		}
	}
	w.wg.Wait()
	return unclean
}

func (w *Workers) isUnexpected(p *process) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.unexpected {
		if e.Worker == p.n && e.Incarnation == p.incarnation {
			return true
		}
	}
	return false
}

// Unexpected lists the exits nobody asked for.
func (w *Workers) Unexpected() []Exit {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Exit(nil), w.unexpected...)
}

// Logs lists every log file written, oldest first.
func (w *Workers) Logs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(w.all))
	for i, p := range w.all {
		out[i] = p.logPath
	}
	return out
}
