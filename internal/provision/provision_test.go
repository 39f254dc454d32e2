package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

func TestClassifyAirbyte(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		code      contract.Code
		retryable bool
	}{
		{"400", &airbyte.APIError{StatusCode: 400}, contract.CodeAirbyteBadRequest, false},
		{"422", &airbyte.APIError{StatusCode: 422}, contract.CodeAirbyteBadRequest, false},
		{"401", &airbyte.APIError{StatusCode: 401}, contract.CodeAirbyteUnauthorized, false},
		{"403", &airbyte.APIError{StatusCode: 403}, contract.CodeAirbyteForbidden, false},
		{"404", &airbyte.APIError{StatusCode: 404}, contract.CodeAirbyteNotFound, false},
		{"429", &airbyte.APIError{StatusCode: 429}, contract.CodeAirbyteUnavailable, true},
		{"500", &airbyte.APIError{StatusCode: 500}, contract.CodeAirbyteUnavailable, true},
		{"503 wrapped", fmt.Errorf("x: %w", &airbyte.APIError{StatusCode: 503}), contract.CodeAirbyteUnavailable, true},
		{"transport", &airbyte.TransportError{Err: errors.New("reset")}, contract.CodeAirbyteUnavailable, true},
		{"deadline", context.DeadlineExceeded, contract.CodeAirbyteUnavailable, true},
		{"already coded", event.Coded(contract.CodeLeaseUnavailable, true, errors.New("x")), contract.CodeLeaseUnavailable, true},
		{"unknown", errors.New("boom"), contract.CodeInternal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, retryable := event.CodeOf(classifyAirbyte("op", tc.err))
			if code != tc.code || retryable != tc.retryable {
				t.Fatalf("got %s/%t, want %s/%t", code, retryable, tc.code, tc.retryable)
			}
		})
	}
}

func TestClassifySecret(t *testing.T) {
	ref := vault.Ref{Scheme: "file", Path: "a/b.json"}
	for _, tc := range []struct {
		err     error
		code    contract.Code
		retry   bool
		outcome string
	}{
		{&vault.NotFoundError{Ref: ref}, contract.CodeSecretNotFound, false, "not_found"},
		{&vault.PermissionError{Ref: ref}, contract.CodeSecretPermissionDenied, false, "permission_denied"},
		{&vault.UnavailableError{Ref: ref}, contract.CodeSecretBackendUnavailable, true, "unavailable"},
		{&vault.InvalidCredentialsError{Ref: ref}, contract.CodeInvalidCredentials, false, "invalid"},
		{&vault.ForbiddenError{Ref: ref}, contract.CodeForbiddenSecretRef, false, "invalid"},
		{&vault.RefError{}, contract.CodeInvalidSecretRef, false, "invalid"},
	} {
		t.Run(string(tc.code), func(t *testing.T) {
			code, retry := event.CodeOf(classifySecret(tc.err))
			if code != tc.code || retry != tc.retry || secretOutcome(tc.err) != tc.outcome {
				t.Fatalf("got %s/%t/%s", code, retry, secretOutcome(tc.err))
			}
		})
	}
}

func TestFailDecides(t *testing.T) {
	s := &Service{cfg: Config{Now: func() time.Time { return time.Unix(0, 0) }}}
	req := event.Request{Kind: contract.KindCredentialsSubmitted, CredentialsSubmitted: &contract.CredentialsSubmitted{ID: "r", WorkspaceName: "w"}}
	for _, tc := range []struct {
		name       string
		err        error
		final      bool
		action     Action
		outcome    string
		resultCode contract.Code
	}{
		{"retryable, not final: retry", event.Coded(contract.CodeAirbyteUnavailable, true, errors.New("503")), false, Retry, OutcomeRetry, ""},
		{"retryable, final: dead letter", event.Coded(contract.CodeAirbyteUnavailable, true, errors.New("503")), true, DeadLetter, OutcomeDeadLetter, contract.CodeAirbyteUnavailable},
		{"permanent: dead letter at once", event.Coded(contract.CodeSecretNotFound, false, errors.New("gone")), false, DeadLetter, OutcomePermanentError, contract.CodeSecretNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := s.fail(req, Delivery{Number: 3, Final: tc.final}, tc.err)
			if d.Action != tc.action || d.Outcome != tc.outcome {
				t.Fatalf("decision %+v", d)
			}
			if tc.resultCode == "" {
				if d.Result != nil {
					t.Fatal("a retry publishes nothing")
				}
				return
			}
			if d.Result.Error.Code != tc.resultCode || d.Result.Attempts != 3 || d.Result.Message != contract.MessageSourceCreateError {
				t.Fatalf("result %+v", d.Result)
			}
		})
	}
}

// Whatever Airbyte echoes back, the result carries no credential value.
func TestCreatedDataScrubsCredentials(t *testing.T) {
	creds := secret.NewFields(map[string]string{"token": "ghp_scrub_me"})
	resp := &airbyte.ConnectorSourceCreateResponse{
		ID: "c1", Name: "GitHub",
		ReplicationConfig: []byte(`{"credentials":{"token":"ghp_scrub_me"},"nested":{"list":["x","Bearer ghp_scrub_me"]},"repositories":["acme/app"]}`),
	}
	d := createdData(resp, creds)
	if d.ReplicationConfig["credentials"] != contract.RedactedCredentials {
		t.Fatalf("credentials %v", d.ReplicationConfig["credentials"])
	}
	if got := fmt.Sprint(d.ReplicationConfig); strings.Contains(got, "ghp_scrub_me") {
		t.Fatalf("credential survived: %s", got)
	}
	if fmt.Sprint(d.ReplicationConfig["repositories"]) != "[acme/app]" {
		t.Fatal("non-secret settings were lost")
	}
}

func TestSameKind(t *testing.T) {
	gh := "github"
	for _, tc := range []struct {
		name string
		req  contract.CredentialsSubmitted
		tmpl airbyte.SummarizedSourceTemplate
		want bool
	}{
		{"type matches case-insensitively", contract.CredentialsSubmitted{ConnectorType: "GitHub"}, airbyte.SummarizedSourceTemplate{ConnectorName: gh}, true},
		{"type differs", contract.CredentialsSubmitted{ConnectorType: "gitlab"}, airbyte.SummarizedSourceTemplate{ConnectorName: gh}, false},
		{"type unknown in list", contract.CredentialsSubmitted{ConnectorType: "gitlab"}, airbyte.SummarizedSourceTemplate{}, true},
		{"definition", contract.CredentialsSubmitted{DefinitionID: "D1"}, airbyte.SummarizedSourceTemplate{ActorDefinitionID: "d1"}, true},
		{"template differs", contract.CredentialsSubmitted{SourceTemplateID: "t1"}, airbyte.SummarizedSourceTemplate{ID: "t2"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := targetOf(&tc.req).sameKind(tc.tmpl); got != tc.want {
				t.Fatalf("sameKind = %t", got)
			}
		})
	}
}
