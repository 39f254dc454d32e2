package sandbox_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

// FuzzConnectorCreateBody: whatever body a create or check gets, the sandbox answers one of the
// statuses the spec declares (or 404 for a workspace it must not create), never panics, and
// shows every credential of a created connector masked.
func FuzzConnectorCreateBody(f *testing.F) {
	files, _ := filepath.Glob("testdata/client-requests/*.json")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"workspace_name":"w","connector_type":"github","replication_config":{"credentials":"nope"}}`))
	f.Add([]byte(`{"workspace_name":"w","definition_id":"36c891d9-4bd9-43ac-bad2-10e12756272c","connector_type":"github"}`))
	f.Add([]byte(`[]`))
	srv := sandbox.New(sandbox.Config{StrictAuth: true})
	h := srv.Handler()
	tok := mintInProcess(f, h)
	scoped := httptest.NewRecorder()
	mint, _ := http.NewRequest("POST", "/api/v1/account/applications/scoped-token", bytes.NewReader([]byte(`{"workspace_name":"w"}`)))
	mint.Header.Set("Authorization", "Bearer "+tok)
	h.ServeHTTP(scoped, mint)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/api/v1/integrations/connectors", "/api/v1/integrations/connectors/check"} {
			rec := httptest.NewRecorder()
			req, _ := http.NewRequest("POST", path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 400, 404, 422:
			default:
				t.Fatalf("%s answered %d: %s", path, rec.Code, rec.Body)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s answered no JSON: %s", path, rec.Body)
			}
			if path == "/api/v1/integrations/connectors" && rec.Code == 200 {
				var out struct {
					ReplicationConfig struct {
						Credentials map[string]any `json:"credentials"`
					} `json:"replication_config"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
					t.Fatal(err)
				}
				for k, v := range out.ReplicationConfig.Credentials {
					if v != "**********" {
						t.Fatalf("credential %s shown as %v", k, v)
					}
				}
			}
		}
	})
}

func mintInProcess(f *testing.F, h http.Handler) string {
	rec := httptest.NewRecorder()
	b, _ := json.Marshal(map[string]string{"client_id": sandbox.DefaultClientID, "client_secret": sandbox.DefaultClientSecret})
	req, _ := http.NewRequest("POST", "/api/v1/account/applications/token", bytes.NewReader(b))
	h.ServeHTTP(rec, req)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.AccessToken == "" {
		f.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	return out.AccessToken
}
