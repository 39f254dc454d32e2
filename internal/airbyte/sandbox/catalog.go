package sandbox

import (
	"slices"
	"strings"
)

// authScheme is one way a connector authenticates: the credential fields it requires. Real
// connector specs offer several (a oneOf under "credentials"); credentials fit a connector when
// they hold every field of one of its schemes.
type authScheme struct {
	name   string   // as the spec's option_title would say it
	fields []string // required, non-empty string values
	oauth  bool     // server_side_oauth_secret_id may stand in for the credentials
}

var (
	schemeToken       = authScheme{name: "token", fields: []string{"token"}}
	schemePAT         = authScheme{name: "personal access token", fields: []string{"personal_access_token"}}
	schemeAccessToken = authScheme{name: "OAuth access token", fields: []string{"access_token"}, oauth: true}
	schemePrivateApp  = authScheme{name: "private app access token", fields: []string{"access_token"}}
	schemeOAuth       = authScheme{name: "OAuth", fields: []string{"client_id", "client_secret", "refresh_token"}, oauth: true}
	schemeAPIToken    = authScheme{name: "API token", fields: []string{"email", "api_token"}}
)

// connectorDef is a source definition: one connector type, its auth schemes, and its templates.
type connectorDef struct {
	connectorType string // slug, lower case, as matched against connector_type
	displayName   string // also matched against connector_type
	definitionID  string // Airbyte's public source definition id
	schemes       []authScheme
}

// catalogEntry is a source template of a definition: what a connector is created from.
type catalogEntry struct {
	*connectorDef
	templateID   string // the sandbox's own (templates are per organization)
	templateName string
	tags         []string
}

func (c *connectorDef) icon() string {
	return "https://connectors.airbyte.com/files/metadata/airbyte/source-" + c.connectorType + "/latest/icon.svg"
}

// oauth reports whether the connector offers an OAuth scheme.
func (c *connectorDef) oauth() bool {
	return slices.ContainsFunc(c.schemes, func(s authScheme) bool { return s.oauth })
}

// secretFields are every credential field any scheme names, sorted.
func (c *connectorDef) secretFields() []string {
	var out []string
	for _, s := range c.schemes {
		for _, f := range s.fields {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return out
}

// fits returns the first scheme creds satisfy.
func (c *connectorDef) fits(creds map[string]any) (authScheme, bool) {
	for _, s := range c.schemes {
		if slices.IndexFunc(s.fields, func(f string) bool { v, ok := creds[f].(string); return !ok || v == "" }) < 0 {
			return s, true
		}
	}
	return authScheme{}, false
}

// definitions is the sandbox's fixed catalog of source definitions, with Airbyte's public ids.
var definitions = []*connectorDef{
	{"github", "GitHub", "ef69ef6e-aa7f-4af1-a01d-ef775033524e", []authScheme{schemeToken, schemePAT, schemeAccessToken}},
	{"gitlab", "GitLab", "5e6175e5-68e1-4c17-bff9-56103bbb0d80", []authScheme{schemeToken, schemeAccessToken}},
	{"hubspot", "HubSpot", "36c891d9-4bd9-43ac-bad2-10e12756272c", []authScheme{schemeOAuth, schemePrivateApp}},
	{"salesforce", "Salesforce", "b117307c-14b6-41aa-9422-947e34922962", []authScheme{schemeOAuth}},
	{"stripe", "Stripe", "e094cb9a-26de-4645-8761-65c0c425d1de", []authScheme{schemeToken}},
	{"zendesk-support", "Zendesk Support", "79c1aa37-dae3-42ae-b333-d1c105477715", []authScheme{schemeOAuth, schemeAPIToken}},
	{"slack", "Slack", "c2281cee-86f9-4a86-bb48-d23286b4c7bd", []authScheme{schemeToken, schemeAccessToken}},
	{"notion", "Notion", "6e00b415-b02e-4160-bf02-58176a0ae687", []authScheme{schemeToken, schemeAccessToken}},
	{"jira", "Jira", "68e63de2-bb83-4c7e-93fa-a8a9051e3993", []authScheme{schemeToken, schemeAPIToken}},
	{"google-drive", "Google Drive", "9f8dda77-1048-4368-815b-269bf54ee9b8", []authScheme{schemeOAuth}},
}

func def(connectorType string) *connectorDef {
	for _, d := range definitions {
		if d.connectorType == connectorType {
			return d
		}
	}
	panic("sandbox: no definition " + connectorType)
}

// catalog is every source template. Jira and Salesforce have two, so that "several templates
// exist, source_template_id is required" can be exercised.
var catalog = []catalogEntry{
	{def("github"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e01", "GitHub", []string{"engineering"}},
	{def("gitlab"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e02", "GitLab", []string{"engineering"}},
	{def("hubspot"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e03", "HubSpot", []string{"crm"}},
	{def("salesforce"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e04", "Salesforce", []string{"crm"}},
	{def("stripe"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e05", "Stripe", []string{"payments"}},
	{def("zendesk-support"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e06", "Zendesk Support", []string{"support"}},
	{def("slack"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e07", "Slack", []string{"communication"}},
	{def("notion"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e08", "Notion", []string{"docs"}},
	{def("jira"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e09", "Jira", []string{"engineering"}},
	{def("google-drive"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e0a", "Google Drive", []string{"docs"}},
	{def("jira"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e0b", "Jira Service Management", []string{"support"}},
	{def("salesforce"), "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e0c", "Salesforce Sandbox", []string{"crm", "testing"}},
}

func lookupType(name string) *connectorDef {
	for _, d := range definitions {
		if strings.EqualFold(d.connectorType, name) || strings.EqualFold(d.displayName, name) {
			return d
		}
	}
	return nil
}

func lookupDefinition(id string) *connectorDef {
	for _, d := range definitions {
		if strings.EqualFold(d.definitionID, id) {
			return d
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

// templatesOf returns the templates of d, in catalog order.
func templatesOf(d *connectorDef) []*catalogEntry {
	var out []*catalogEntry
	for i := range catalog {
		if catalog[i].connectorDef == d {
			out = append(out, &catalog[i])
		}
	}
	return out
}
