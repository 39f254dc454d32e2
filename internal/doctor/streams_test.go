package doctor_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/doctor"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

func lines(rep doctor.Report) string {
	var out bytes.Buffer
	rep.Write(&out)
	return out.String()
}

// On a NATS server where nothing was set up yet, doctor says what run would do: create the streams
// (the default), or refuse to start (--manage-streams=false, the platform team's streams).
func TestStreamsNotSetUpYet(t *testing.T) {
	srv := natsembedtest.Start(t)
	_, airbyteURL := sandboxtest.Start(t, sandbox.Config{})
	cfg := workerConfig(t, srv.URL, airbyteURL)
	cfg.NATSUser, cfg.NATSPassword = "", secret.Value{}

	t.Run("run manages the streams", func(t *testing.T) {
		out := lines(doctor.Run(context.Background(), cfg, doctor.Options{Timeout: 3 * time.Second}))
		for _, want := range []string{
			"ok    stream PROVISIONER_REQUESTS: run will change it: missing; run creates it at start",
			"ok    consumer provisioner: run will change it: missing; run creates it at start",
			"FAIL  permission to publish results: provisioner.results.source_created.doctor-probe: no stream stores it — start `provisioner run` once",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("the platform team's streams are missing", func(t *testing.T) {
		c := cfg
		c.ManageStreams = false
		rep := doctor.Run(context.Background(), c, doctor.Options{Timeout: 3 * time.Second})
		out := lines(rep)
		if rep.OK() || !strings.Contains(out, "FAIL  stream PROVISIONER_REQUESTS: is missing — create or fix it as run needs it") {
			t.Errorf("doctor output:\n%s", out)
		}
	})
}

// Without --nats-url, run starts an embedded server: doctor checks that it could.
func TestEmbeddedNATS(t *testing.T) {
	_, airbyteURL := sandboxtest.Start(t, sandbox.Config{})
	cfg := workerConfig(t, "nats://127.0.0.1:4222", airbyteURL)
	cfg.NATSURL, cfg.NATSUser, cfg.NATSPassword = "", "", secret.Value{}
	cfg.NATSStoreDir = filepath.Join(t.TempDir(), "nats")

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	for _, tc := range []struct {
		name, listen, want string
	}{
		{"a free address", freeAddr, "ok    nats: --nats-url is empty: run starts an embedded server on " + freeAddr},
		{"a taken address", taken.Addr().String(), "FAIL  nats: embedded nats cannot listen on " + taken.Addr().String() + " (--nats-listen): bind: address already in use — free the address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.NATSListen = tc.listen
			out := lines(doctor.Run(context.Background(), c, doctor.Options{Timeout: 3 * time.Second}))
			if !strings.Contains(out, tc.want) {
				t.Errorf("doctor output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

// With --airbyte-client-secret-ref, doctor reads the client secret the way run does, then mints.
func TestClientSecretRef(t *testing.T) {
	_, airbyteURL := sandboxtest.Start(t, sandbox.Config{})
	for _, tc := range []struct {
		name, secret string
		want         []string
	}{
		{"stored", sandbox.DefaultClientSecret, []string{"ok    airbyte client secret: read from file:provisioner/airbyte.json#client_secret", "ok    token mint:"}},
		{"wrong", "not-the-client-secret", []string{"ok    airbyte client secret:", "FAIL  token mint:", "check --airbyte-client-id and the client secret"}},
		{"absent", "", []string{"FAIL  airbyte client secret: --airbyte-client-secret-ref file:provisioner/airbyte.json#client_secret: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := workerConfig(t, "nats://127.0.0.1:1", airbyteURL)
			cfg.AirbyteClientSecret = secret.Value{}
			cfg.AirbyteClientSecretRef = "file:provisioner/airbyte.json#client_secret"
			if tc.secret != "" {
				p := filepath.Join(cfg.SecretsDir, "provisioner", "airbyte.json")
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(`{"client_secret":"`+tc.secret+`"}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out := lines(doctor.Run(context.Background(), cfg, doctor.Options{Timeout: 3 * time.Second}))
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("doctor output lacks %q:\n%s", w, out)
				}
			}
			if tc.secret != "" && strings.Contains(out, tc.secret) {
				t.Fatal("doctor printed the client secret")
			}
		})
	}
}
