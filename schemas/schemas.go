// Package schemas embeds the JSON Schemas (draft 2020-12) of the provisioner's v1 event contracts and
// compiles them: the same files document the contracts, validate incoming requests at run time and
// validate the results the worker publishes in tests.
package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed *.v1.json
var files embed.FS

// BaseURL is the $id prefix of every schema; a $ref between files resolves against it.
const BaseURL = "https://schemas.provisioner.dev/v1/"

// Name names one schema file.
type Name string

// The schemas of v1.
const (
	CredentialsSubmittedRequest Name = "credentials-submitted.request.v1.json"
	CustomerOnboardedRequest    Name = "customer-onboarded.request.v1.json"
	SourceCreatedResult         Name = "source-created.result.v1.json"
	SourceCreateErrorResult     Name = "source-create-error.result.v1.json"
	WorkspaceReadyResult        Name = "workspace-ready.result.v1.json"
	WorkspaceErrorResult        Name = "workspace-error.result.v1.json"

	ConnectorDisconnectedRequest Name = "connector-disconnected.request.v1.json"
	CustomerOffboardedRequest    Name = "customer-offboarded.request.v1.json"
	SourceUpdatedResult          Name = "source-updated.result.v1.json"
	SourceUpdateErrorResult      Name = "source-update-error.result.v1.json"
	SourceDeletedResult          Name = "source-deleted.result.v1.json"
	SourceDeleteErrorResult      Name = "source-delete-error.result.v1.json"
	WorkspaceOffboardedResult    Name = "workspace-offboarded.result.v1.json"
	WorkspaceOffboardErrorResult Name = "workspace-offboard-error.result.v1.json"
)

// All lists every top-level schema.
var All = []Name{
	CredentialsSubmittedRequest, CustomerOnboardedRequest,
	SourceCreatedResult, SourceCreateErrorResult, WorkspaceReadyResult, WorkspaceErrorResult,
	ConnectorDisconnectedRequest, CustomerOffboardedRequest,
	SourceUpdatedResult, SourceUpdateErrorResult, SourceDeletedResult, SourceDeleteErrorResult,
	WorkspaceOffboardedResult, WorkspaceOffboardErrorResult,
}

// ResultSchema returns the schema of a result message (source_created, ...), or false.
func ResultSchema(message string) (Name, bool) {
	n := Name(strings.ReplaceAll(message, "_", "-") + ".result.v1.json")
	for _, a := range All {
		if a == n {
			return n, true
		}
	}
	return "", false
}

// Files returns the embedded schema files (for serving or listing them).
func Files() fs.FS { return files }

// Set is the compiled schemas. It is safe for concurrent use.
type Set struct {
	compiled map[Name]*jsonschema.Schema
}

// Compile compiles every schema, asserting formats (uuid, date-time) as the contracts require.
func Compile() (*Set, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("schemas: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", e.Name(), err)
		}
		if err := c.AddResource(BaseURL+e.Name(), doc); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", e.Name(), err)
		}
	}
	s := &Set{compiled: make(map[Name]*jsonschema.Schema, len(All))}
	for _, n := range All {
		sch, err := c.Compile(BaseURL + string(n))
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", n, err)
		}
		s.compiled[n] = sch
	}
	return s, nil
}

// Validate checks a decoded JSON value (as produced by jsonschema.UnmarshalJSON, which keeps numbers exact).
// The error is a *ValidationError listing every violation with its location.
func (s *Set) Validate(name Name, doc any) error {
	sch, ok := s.compiled[name]
	if !ok {
		return fmt.Errorf("schemas: unknown schema %q", name)
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &ValidationError{Schema: name, Violations: flatten(ve)}
		}
		return fmt.Errorf("schemas: %s: %w", name, err)
	}
	return nil
}

// ValidateJSON decodes data and validates it.
func (s *Set) ValidateJSON(name Name, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("schemas: invalid json: %w", err)
	}
	return s.Validate(name, doc)
}

// ValidationError lists the ways a document breaks a schema.
type ValidationError struct {
	Schema     Name
	Violations []string // "at /replication_config: must not be valid against the 'not' schema" style
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("does not match %s: %s", e.Schema, strings.Join(e.Violations, "; "))
}

// flatten turns the library's error tree into its leaves, which are the actionable messages.
// Messages name locations and keywords; they may quote offending values, so callers must not put
// secrets in the documents they validate (requests carry only references, by design).
func flatten(ve *jsonschema.ValidationError) []string {
	printer := message.NewPrinter(language.English)
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			out = append(out, fmt.Sprintf("at %s: %s", loc, e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return out
}
