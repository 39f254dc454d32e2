package event

import (
	"errors"
	"strings"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/schemas"
)

// explainedError is a schema failure told as what a person would change: the requests' usual
// mistakes in words first, then whatever else the schema found.
type explainedError struct {
	said []string
	err  *schemas.ValidationError
}

func (e *explainedError) Error() string { return strings.Join(e.said, "; ") }
func (e *explainedError) Unwrap() error { return e.err }

// connectorKinds are the fields that say which connector a credentials request is for: at least
// one, and not connector_type together with definition_id.
var connectorKinds = []string{"connector_type", "definition_id", "source_template_id"}

// explainSchema rewrites the schema's violations that have a plain answer. The schema's own words
// for them ("missing property" three times for one missing kind, "'not' failed" for inline
// credentials) name a keyword, not the fix.
func explainSchema(kind contract.Kind, doc any, err error) error {
	var ve *schemas.ValidationError
	obj, isObject := doc.(map[string]any)
	if !errors.As(err, &ve) || !isObject || kind != contract.KindCredentialsSubmitted {
		return err
	}
	var said []string
	explained := map[string]bool{}
	if _, inline := obj["credentials"]; inline || hasKey(obj["replication_config"], "credentials") {
		said = append(said, "credentials are never sent in a request, store them and send a reference (credentials_ref, e.g. vault:customers/acme/github)")
		explained["at /: additional properties 'credentials' not allowed"] = true
		explained["at /replication_config: 'not' failed"] = true
	}
	if _, ok := obj["credentials_ref"]; !ok {
		said = append(said, "give credentials_ref, the reference of the stored credentials (vault:<path>, file:<path> or env:<NAME>, optionally #field)")
		explained["at /: missing property 'credentials_ref'"] = true
	}
	var given []string
	for _, k := range connectorKinds {
		if _, ok := obj[k]; ok {
			given = append(given, k)
		}
	}
	_, hasType := obj["connector_type"]
	_, hasDefinition := obj["definition_id"]
	switch {
	case len(given) == 0:
		said = append(said, "give one of connector_type, definition_id or source_template_id")
		for _, k := range connectorKinds {
			explained["at /: missing property '"+k+"'"] = true
		}
	case hasType && hasDefinition:
		said = append(said, "give connector_type or definition_id, not both (source_template_id may come with either)")
		explained["at /: 'not' failed"] = true
	}
	if len(said) == 0 {
		return err
	}
	var rest []string
	for _, v := range ve.Violations {
		if !explained[v] {
			rest = append(rest, v)
		}
	}
	if len(rest) > 0 {
		said = append(said, (&schemas.ValidationError{Schema: ve.Schema, Violations: rest}).Error())
	}
	return &explainedError{said: said, err: ve}
}

func hasKey(v any, key string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, has := m[key]
	return has
}
