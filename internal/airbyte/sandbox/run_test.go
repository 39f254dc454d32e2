package sandbox_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

func TestRun(t *testing.T) {
	faults := filepath.Join(t.TempDir(), "faults.json")
	if err := os.WriteFile(faults, []byte(`{"rules":{"token":{"error_rates":{"503":1}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantScoped int // a scoped token listing connectors, when the token mint works
	}{
		{"defaults", []string{"--listen", "127.0.0.1:0", "--client-secret", "run-secret-123"}, 200, 200},
		{"strict auth", []string{"--listen", "127.0.0.1:0", "--client-secret", "run-secret-123", "--strict-auth"}, 200, 403},
		{"faults file", []string{"--listen", "127.0.0.1:0", "--client-secret", "run-secret-123", "--faults", faults, "--seed", "9", "--latency", "1ms"}, 503, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			errc := make(chan error, 1)
			go func() {
				err := sandbox.Run(ctx, tt.args, pw, nil)
				_ = pw.Close()
				errc <- err
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatalf("read banner: %v", err)
			}
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			m := regexp.MustCompile(`^sandbox: listening on (http://127\.0\.0\.1:\d+) \(client id sandbox-client, organization [0-9a-f-]{36}\)\n$`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("banner = %q", line)
			}
			if strings.Contains(line, "run-secret-123") {
				t.Fatalf("banner prints the secret")
			}
			c := newClient(t, m[1])
			r, err := c.try("POST", "/api/v1/account/applications/token", "", map[string]string{"client_id": sandbox.DefaultClientID, "client_secret": "run-secret-123"})
			if err != nil || r.status != tt.wantStatus {
				t.Fatalf("token: %v %d %s", err, r.status, r.body)
			}
			if tt.wantScoped != 0 {
				var tr struct {
					AccessToken string `json:"access_token"`
				}
				r.decode(t, &tr)
				sc := c.scopedToken(tr.AccessToken, "acme")
				if r := c.do("GET", "/api/v1/integrations/connectors?workspace_name=acme", sc, nil); r.status != tt.wantScoped {
					t.Fatalf("scoped list: %d %s", r.status, r.body)
				}
			}
			cancel()
			if err := <-errc; err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  bool
		wantHelp []string
	}{
		{"help", []string{"--help"}, false, []string{"-client-id", "sandbox-client", "-client-secret", "-listen", "127.0.0.1:8081", "-faults", "-seed", "-operator-ttl", "-expires-in", "-scoped-ttl", "-latency", "-strict-auth"}},
		{"unknown flag", []string{"--nope"}, true, nil},
		{"missing faults file", []string{"--faults", "/nonexistent/faults.json"}, true, nil},
		{"stray argument", []string{"extra"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out syncBuffer
			err := sandbox.Run(context.Background(), tt.args, &out, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			for _, w := range tt.wantHelp {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("help lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
