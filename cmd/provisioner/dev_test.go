package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// devInstance is a running `provisioner dev` and what it printed about itself.
type devInstance struct {
	stdout, stderr *lockedBuffer
	natsURL        string
	sandboxURL     string
	secretsDir     string
}

// startDev runs `provisioner dev` on free ports until the test ends, and waits for the demo's four
// results.
func startDev(t *testing.T) *devInstance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devInstance{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	code := make(chan int, 1)
	go func() {
		code <- dispatch(ctx, []string{"dev", "--nats-listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--dir", t.TempDir()}, d.stdout, d.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-code:
		case <-time.After(30 * time.Second):
			t.Error("dev did not drain and exit")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(d.stdout.String(), "request=demo-") < 4 {
		select {
		case c := <-code:
			t.Fatalf("dev exited early with %d\nstdout:\n%s\nstderr:\n%s", c, d.stdout.String(), d.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo results did not arrive\nstdout:\n%s\nstderr:\n%s", d.stdout.String(), d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := d.stdout.String()
	field := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dev output lacks %s:\n%s", re, out)
		}
		return m[1]
	}
	d.natsURL = field(`(?m)^  nats +(nats://\S+)`)
	d.sandboxURL = field(`(?m)^  sandbox +(http://\S+)`)
	d.secretsDir = field(`(?m)^  secrets +(\S+)`)
	return d
}

func TestDev(t *testing.T) {
	d := startDev(t)
	out, errOut := d.stdout.String(), d.stderr.String()

	t.Run("each verdict is printed once", func(t *testing.T) {
		for _, id := range regexp.MustCompile(`request=(demo-\S+)`).FindAllStringSubmatch(out, -1) {
			if n := strings.Count(out+errOut, id[1]); n != 1 {
				t.Errorf("request %s appears %d times\nstdout:\n%s\nstderr:\n%s", id[1], n, out, errOut)
			}
		}
	})
	t.Run("a first run warns about nothing", func(t *testing.T) {
		for _, line := range strings.Split(errOut, "\n") {
			if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
				t.Errorf("dev's first run logs %s", line)
			}
		}
	})
	t.Run("a bad request is printed once", func(t *testing.T) {
		var stdout, stderr lockedBuffer
		code := dispatch(context.Background(), []string{"publish", "credentials", "--nats-url", d.natsURL, "--no-validate",
			"--id", "bad-once-1", "--workspace", "acme", "--credentials-ref", "file:customers/acme/github.json"}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("publish: exit %d %s", code, stderr.String())
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(d.stdout.String(), "request=bad-once-1") {
			if time.Now().After(deadline) {
				t.Fatalf("no result for the bad request\n%s", d.stdout.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		all := d.stdout.String() + d.stderr.String()
		if n := strings.Count(all, "bad-once-1"); n != 1 {
			t.Errorf("the bad request appears %d times:\n%s", n, all)
		}
		if !strings.Contains(d.stdout.String(), "code=schema_violation retryable=false: give one of connector_type, definition_id or source_template_id") {
			t.Errorf("the result line does not say what to fix:\n%s", d.stdout.String())
		}
	})
	t.Run("the hint runs publish the way dev was started", func(t *testing.T) {
		// a test binary is built by go test like go run builds one: no name on PATH finds it
		if !strings.Contains(out, "publish more with: go run ./cmd/provisioner publish credentials --nats-url "+d.natsURL) {
			t.Fatalf("hint:\n%s", out)
		}
	})

	doctorArgs := []string{"doctor", "--nats-url", d.natsURL, "--airbyte-url", d.sandboxURL,
		"--airbyte-client-id", "sandbox-client", "--airbyte-client-secret", "sandbox-secret",
		"--secrets-dir", d.secretsDir, "--secret-path-policy", "customers/{workspace_name}/"}
	t.Run("doctor finds a running dev instance healthy", func(t *testing.T) {
		var stdout, stderr lockedBuffer
		if code := dispatch(context.Background(), doctorArgs, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		}
		// the golden file holds each line's verdict and check, not the details that vary
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			verdict, rest, _ := strings.Cut(line, "  ")
			name, _, _ := strings.Cut(strings.TrimSpace(rest), ": ")
			names = append(names, verdict+"  "+name)
		}
		golden(t, "doctor/dev-healthy.txt", strings.Join(names, "\n")+"\n")
	})

	tests := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"wrong Airbyte client secret", []string{"--airbyte-client-secret", "not-the-secret"},
			[]string{"FAIL  token mint: ", "— check --airbyte-client-id and the client secret"}},
		{"secrets directory missing", []string{"--secrets-dir", filepath.Join(t.TempDir(), "missing")},
			[]string{"FAIL  secrets file: ", "— check --secrets-dir"}},
		{"ack wait unlike the consumer's", []string{"--ack-wait", "45s"},
			[]string{"FAIL  consumer provisioner: ack_wait is 30s, this replica's settings want 45s — ", "--reconcile-streams"}},
		{"another subject prefix", []string{"--subject-prefix", "elsewhere"},
			[]string{`FAIL  stream PROVISIONER_REQUESTS: subjects is [provisioner.requests.>], this replica's settings want [elsewhere.requests.>] — `}},
		{"NATS not there", []string{"--nats-url", "nats://127.0.0.1:1"},
			[]string{"FAIL  nats: cannot connect to nats://127.0.0.1:1", "— check --nats-url"}},
	}
	for _, tc := range tests {
		t.Run("doctor: "+tc.name, func(t *testing.T) {
			var stdout, stderr lockedBuffer
			code := dispatch(context.Background(), append(append([]string{}, doctorArgs...), tc.flags...), &stdout, &stderr)
			if code != exitFailed {
				t.Fatalf("exit %d, want %d\nstdout:\n%s", code, exitFailed, stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("doctor output lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
				if !strings.HasPrefix(line, "ok    ") && !(strings.HasPrefix(line, "FAIL  ") && strings.Contains(line, " — ")) {
					t.Errorf("line is neither ok nor a failure with what to do: %q", line)
				}
			}
			if strings.Contains(stdout.String()+stderr.String(), "not-the-secret") {
				t.Fatal("doctor printed a secret")
			}
		})
	}
	t.Run("doctor refuses a configuration run would refuse", func(t *testing.T) {
		var stdout, stderr lockedBuffer
		code := dispatch(context.Background(), []string{"doctor", "--nats-url", d.natsURL, "--airbyte-client-id", "x", "--airbyte-client-secret", "y"}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), "--secret-path-policy") {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	})
}

// A taken port fails dev at once, naming the address and the error.
func TestDevWithATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, tc := range []struct {
		flag string
		want string
	}{
		{"--nats-listen", "provisioner dev: embedded nats cannot listen on " + addr + " (--nats-listen): bind: address already in use"},
		{"--sandbox-listen", "provisioner dev: sandbox listen: listen tcp " + addr + ": bind: address already in use"},
		{"--metrics-addr", "provisioner dev: metrics server: cannot listen on " + addr + " (--metrics-addr): bind: address already in use"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			args := map[string]string{"--nats-listen": "127.0.0.1:0", "--sandbox-listen": "127.0.0.1:0", "--metrics-addr": "127.0.0.1:0"}
			args[tc.flag] = addr
			argv := []string{"dev", "--dir", t.TempDir(), "--no-demo"}
			for k, v := range args {
				argv = append(argv, k, v)
			}
			var stdout, stderr lockedBuffer
			code := make(chan int, 1)
			go func() { code <- dispatch(context.Background(), argv, &stdout, &stderr) }()
			select {
			case c := <-code:
				if c != exitFailed {
					t.Fatalf("exit %d\n%s", c, stderr.String())
				}
			case <-time.After(10 * time.Second): // the old behaviour waited 30s for a server that never came
				t.Fatalf("dev did not fail on a taken port\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			}
			var last string
			for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				if strings.HasPrefix(line, "provisioner dev: ") {
					last = line
				}
			}
			if !strings.Contains(last, tc.want) {
				t.Fatalf("the error %q does not say %q\nstderr:\n%s", last, tc.want, stderr.String())
			}
			if n := strings.Count(last, addr); n != 1 {
				t.Errorf("the error names the address %d times: %q", n, last)
			}
		})
	}
}

func TestSelfCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "provisioner")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "provisioner")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	found := func(p string) func(string) (string, error) {
		return func(string) (string, error) { return p, nil }
	}
	notFound := func(string) (string, error) { return "", errors.New("not found") }
	tests := []struct {
		name     string
		exe      string
		exeErr   error
		lookPath func(string) (string, error)
		want     string
	}{
		{"installed on PATH", bin, nil, found(bin), "provisioner"},
		{"built by go run", "/tmp/go-build123/b001/exe/provisioner", nil, notFound, "go run ./cmd/provisioner"},
		{"a binary PATH does not find", bin, nil, notFound, bin},
		{"PATH finds another binary of that name", bin, nil, found(other), bin},
		{"executable unknown", "", errors.New("no /proc"), notFound, "go run ./cmd/provisioner"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := selfCommand(func() (string, error) { return tc.exe, tc.exeErr }, tc.lookPath)
			if got != tc.want {
				t.Fatalf("selfCommand = %q, want %q", got, tc.want)
			}
		})
	}
}
