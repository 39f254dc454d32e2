package openapitest

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func BenchmarkValidate(b *testing.B) {
	v := New(b)
	body := `{"workspace_name":"acme"}`
	resp := []byte(`{"token":"abc"}`)
	for b.Loop() {
		r := httptest.NewRequest("POST", "/api/v1/account/applications/scoped-token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		v.ValidateRequest(b, r, []byte(body))
		v.ValidateResponse(b, r, 200, map[string][]string{"Content-Type": {"application/json"}}, resp)
	}
}
