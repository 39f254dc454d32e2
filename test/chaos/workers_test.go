package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shellWorker is a real process that behaves like a worker: it says it started, drains on
// SIGTERM, and — when a marker file is absent — first fails once the way the test asks.
func shellWorker(t *testing.T, firstRun string) WorkerSpec {
	t.Helper()
	dir := t.TempDir()
	script := `if [ ! -e "$MARK" ]; then touch "$MARK"; ` + firstRun + `; fi
trap 'echo drained; exit 0' TERM
echo '{"msg":"worker started"}'
while :; do sleep 0.05; done`
	return WorkerSpec{
		Bin: "/bin/sh", Args: []string{"-c", script}, Env: []string{"MARK=" + filepath.Join(dir, "mark")},
		LogDir: dir, StartedMarker: `"msg":"worker started"`,
	}
}

func TestWorkers(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	tests := []struct {
		name     string
		firstRun string
		kill     bool
		// killAfterExit: kill only once the first incarnation's own exit is seen, while it is
		// being restarted
		killAfterExit bool
		wantLogs      int
		// wantExit is the unexpected exit expected, "" for none
		wantExit string
	}{
		{name: "kill and restart", firstRun: ":", kill: true, wantLogs: 2},
		{name: "exit during start-up is restarted", firstRun: "echo 'set up streams: deadline exceeded'; exit 1", wantLogs: 2,
			wantExit: "exited during start-up (exit status 1; log "},
		{name: "crash after start is restarted", firstRun: `echo '{"msg":"worker started"}'; echo panic; exit 2`, wantLogs: 2,
			wantExit: "crashed (exit status 2; log "},
		{name: "kill while a crashed worker is being restarted", firstRun: "exit 1", kill: true, killAfterExit: true, wantLogs: 3,
			wantExit: "exited during start-up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := shellWorker(t, tt.firstRun)
			w, err := StartWorkers(spec, 1, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if tt.killAfterExit {
				eventually(t, 10*time.Second, "the first exit", func() bool { return len(w.Unexpected()) == 1 })
			}
			if tt.kill {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				if err := w.Kill(ctx, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, 10*time.Second, "the worker's incarnations", func() bool {
				w.mu.Lock()
				defer w.mu.Unlock()
				if len(w.all) != tt.wantLogs || w.current[0].exited() {
					return false
				}
				b, _ := os.ReadFile(w.current[0].logPath)
				return strings.Contains(string(b), spec.StartedMarker) // its SIGTERM trap is set
			})
			if unclean := w.Stop(5 * time.Second); len(unclean) > 0 {
				t.Errorf("unclean stops: %q", unclean)
			}
			if got := w.Logs(); len(got) != tt.wantLogs {
				t.Errorf("logs = %q, want %d", got, tt.wantLogs)
			}
			exits := w.Unexpected()
			switch {
			case tt.wantExit == "" && len(exits) > 0:
				t.Errorf("unexpected exits: %v", exits)
			case tt.wantExit != "" && (len(exits) != 1 || !strings.Contains(exits[0].String(), tt.wantExit)):
				t.Errorf("exits = %v, want one with %q", exits, tt.wantExit)
			}
			last, err := os.ReadFile(w.Logs()[len(w.Logs())-1])
			if err != nil || !strings.Contains(string(last), "drained") {
				t.Errorf("the last incarnation did not drain on SIGTERM: %q, %v", last, err)
			}
		})
	}
}
