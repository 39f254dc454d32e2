package app_test

import (
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

// A request may name the template together with the connector type or definition, as Airbyte's
// own clients do; for a connector with several templates that is how one is chosen.
func TestTemplateTogetherWithTypeOrDefinition(t *testing.T) {
	const jiraServiceManagement = "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e0b"
	const hubspotDefinition, hubspotTemplate = "36c891d9-4bd9-43ac-bad2-10e12756272c", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e03"
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/jira.json", map[string]string{"token": "jira-kinds-0001"})
	e.writeSecret("acme/hubspot.json", map[string]string{"client_id": "cid", "client_secret": "cs-kinds", "refresh_token": "rt-kinds-0002"})
	e.start(nil)
	jira := credentialsRequest("req-jira", "acme", "jira", "file:acme/jira.json")
	jira["source_template_id"] = jiraServiceManagement
	hub := map[string]any{"id": "req-hub", "workspace_name": "acme", "definition_id": hubspotDefinition,
		"source_template_id": hubspotTemplate, "credentials_ref": "file:acme/hubspot.json"}
	e.publish("credentials.submitted", jira)
	e.publish("credentials.submitted", hub)
	byID := e.byRequest(e.results(2, 30*time.Second))
	for id, template := range map[string]string{"req-jira": jiraServiceManagement, "req-hub": hubspotTemplate} {
		t.Run(id, func(t *testing.T) {
			if r := byID[id]; r.Message != contract.MessageSourceCreated {
				t.Fatalf("result %+v %+v", r, r.Error)
			}
			found := false
			for _, c := range e.sandbox.Connectors("acme") {
				found = found || c.TemplateID == template
			}
			if !found {
				t.Fatalf("no connector of template %s: %+v", template, e.sandbox.Connectors("acme"))
			}
		})
	}
}
