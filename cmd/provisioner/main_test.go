package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/config"
)

// lockedBuffer is written by the command and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDevRunsTheDemoAndDrainsOnInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- dispatch(ctx, []string{"dev", "--nats-listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--dir", t.TempDir()}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(stdout.String(), "request=demo-") < 6 {
		select {
		case c := <-code:
			t.Fatalf("dev exited early with %d\nstdout:\n%s\nstderr:\n%s", c, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo results did not arrive\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := stdout.String()
	for _, want := range []string{"nats      nats://", "sandbox   http://", "metrics   http://", "workspace_ready", "source_created", "code=secret_not_found",
		"source_updated", "source_deleted"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "source_created "); n != 2 {
		t.Errorf("%d source_created lines, want 2:\n%s", n, out)
	}
	cancel() // Ctrl-C
	select {
	case c := <-code:
		if c != exitOK {
			t.Fatalf("exit %d after interrupt\nstderr:\n%s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not drain and exit")
	}
	if !strings.Contains(stdout.String(), "drained") {
		t.Fatal("no drain message")
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stderr string // must appear
	}{
		{"no command", nil, nil, exitUsage, "usage: provisioner"},
		{"unknown command", []string{"frobnicate"}, nil, exitUsage, "unknown command"},
		{"version", []string{"version"}, nil, exitOK, ""},
		{"--version", []string{"--version"}, nil, exitOK, ""},
		{"run without client id", []string{"run", "--nats-url", "nats://127.0.0.1:1"}, nil, exitUsage, "--airbyte-client-id (PROVISIONER_AIRBYTE_CLIENT_ID): required"},
		{"run without a path policy", []string{"run", "--airbyte-client-id", "x", "--airbyte-client-secret", "y", "--nats-url", "nats://127.0.0.1:1"}, nil, exitUsage,
			"--secret-path-policy (PROVISIONER_SECRET_PATH_POLICY): required: give the path every secret reference of a workspace must fall under, e.g. --secret-path-policy='customers/{workspace_name}/'"},
		{"publish refuses a workspace name no secret path can hold", []string{"publish", "onboarded", "--workspace", "Acme Corp"}, nil, exitUsage,
			`workspace name "Acme Corp" contains a space at position 5`},
		{"bad env value", []string{"run"}, map[string]string{"PROVISIONER_CONCURRENCY": "many"}, exitUsage, "PROVISIONER_CONCURRENCY"},
		{"bad url", []string{"run", "--airbyte-client-id", "x", "--airbyte-client-secret", "y", "--nats-url", "http://x"}, nil, exitUsage, "--nats-url"},
		{"unknown flag", []string{"run", "--no-such-flag"}, nil, exitUsage, "no-such-flag"},
		{"publish needs a kind", []string{"publish"}, nil, exitUsage, "credentials, onboarded, disconnected or offboarded"},
		{"publish validates", []string{"publish", "credentials", "--workspace", "acme"}, nil, exitUsage, "request is invalid"},
		{"dlq needs a subcommand", []string{"dlq"}, nil, exitUsage, "usage: provisioner dlq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr lockedBuffer
			code := dispatch(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		t.Run(arg, func(t *testing.T) {
			var stdout, stderr lockedBuffer
			if code := dispatch(context.Background(), []string{arg}, &stdout, &stderr); code != exitOK {
				t.Fatal(code)
			}
			if !regexp.MustCompile(`^provisioner \S+ \(commit \S+, go1\.\d+`).MatchString(stdout.String()) {
				t.Fatalf("version output %q", stdout.String())
			}
		})
	}
}

// The README documents every flag of run and every error code.
func TestReadmeInStep(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	cfg := config.Default()
	cfg.FlagSet("run").VisitAll(func(f *flag.Flag) {
		if !strings.Contains(readme, "`--"+f.Name+"`") && !strings.Contains(readme, "--"+f.Name+"`") && !strings.Contains(readme, "`--"+f.Name+",") && !strings.Contains(readme, ", `--"+f.Name) {
			t.Errorf("README does not document --%s", f.Name)
		}
	})
	for _, c := range contract.Codes {
		if !strings.Contains(readme, "| `"+string(c)+"` |") {
			t.Errorf("README does not document error code %s", c)
		}
	}
}
