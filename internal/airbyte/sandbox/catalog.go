package sandbox

import "strings"

// authScheme is how a connector authenticates; it decides which credentials fit.
type authScheme int

const (
	authToken authScheme = iota // credentials {"token"}
	authOAuth                   // credentials {"client_id", "client_secret", "refresh_token"}
)

// requiredCredentials lists the credential fields each scheme needs.
func (a authScheme) requiredCredentials() []string {
	if a == authOAuth {
		return []string{"client_id", "client_secret", "refresh_token"}
	}
	return []string{"token"}
}

// catalogEntry is one connector the sandbox knows: a definition with exactly one source template.
type catalogEntry struct {
	connectorType string // lower case, as matched against connector_type
	displayName   string
	definitionID  string
	templateID    string
	auth          authScheme
	tags          []string
}

func (c *catalogEntry) icon() string {
	return "https://connectors.airbyte.com/files/metadata/airbyte/source-" + c.connectorType + "/latest/icon.svg"
}

// catalog is the sandbox's fixed connector catalog. The definition ids are Airbyte's public
// source definition ids; the template ids are the sandbox's own (templates are per organization).
var catalog = []catalogEntry{
	{"github", "GitHub", "ef69ef6e-aa7f-4af1-a01d-ef775033524e", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e01", authToken, []string{"engineering"}},
	{"gitlab", "GitLab", "5e6175e5-68e1-4c17-bff9-56103bbb0d80", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e02", authToken, []string{"engineering"}},
	{"hubspot", "HubSpot", "36c891d9-4bd9-43ac-bad2-10e12756272c", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e03", authOAuth, []string{"crm"}},
	{"salesforce", "Salesforce", "b117307c-14b6-41aa-9422-947e34922962", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e04", authOAuth, []string{"crm"}},
	{"stripe", "Stripe", "e094cb9a-26de-4645-8761-65c0c425d1de", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e05", authToken, []string{"payments"}},
	{"zendesk-support", "Zendesk Support", "79c1aa37-dae3-42ae-b333-d1c105477715", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e06", authOAuth, []string{"support"}},
	{"slack", "Slack", "c2281cee-86f9-4a86-bb48-d23286b4c7bd", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e07", authToken, []string{"communication"}},
	{"notion", "Notion", "6e00b415-b02e-4160-bf02-58176a0ae687", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e08", authToken, []string{"docs"}},
	{"jira", "Jira", "68e63de2-bb83-4c7e-93fa-a8a9051e3993", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e09", authToken, []string{"engineering"}},
	{"google-drive", "Google Drive", "9f8dda77-1048-4368-815b-269bf54ee9b8", "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e0a", authOAuth, []string{"docs"}},
}

func lookupType(name string) *catalogEntry {
	for i := range catalog {
		if strings.EqualFold(catalog[i].connectorType, name) || strings.EqualFold(catalog[i].displayName, name) {
			return &catalog[i]
		}
	}
	return nil
}

func lookupDefinition(id string) *catalogEntry {
	for i := range catalog {
		if strings.EqualFold(catalog[i].definitionID, id) {
			return &catalog[i]
		}
	}
	return nil
}

func lookupTemplate(id string) *catalogEntry {
	for i := range catalog {
		if strings.EqualFold(catalog[i].templateID, id) {
			return &catalog[i]
		}
	}
	return nil
}
