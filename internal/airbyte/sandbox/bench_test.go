package sandbox_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

// BenchmarkCreateConnector creates connectors over real HTTP from parallel clients, spread
// over 16 workspaces, without the contract validator (it measures the sandbox).
func BenchmarkCreateConnector(b *testing.B) {
	_, base := sandboxtest.Start(b, sandbox.Config{})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c := &client{t: b, base: base, hc: &http.Client{Transport: tr}}
	op := c.operatorToken()
	const workspaces = 16
	tokens := make([]string, workspaces)
	for i := range tokens {
		tokens[i] = c.scopedToken(op, fmt.Sprintf("bench-%d", i))
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)) % workspaces
			body := fmt.Appendf(nil, `{"workspace_name":"bench-%d","connector_type":"github","credentials":{"token":"t"}}`, i)
			req, err := http.NewRequest("POST", base+"/api/v1/integrations/connectors", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			resp, err := c.hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d: %s", resp.StatusCode, buf.Bytes())
			}
		}
	})
}
