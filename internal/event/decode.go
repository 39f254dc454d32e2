package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/schemas"
)

// Decoder decodes and validates requests. It is safe for concurrent use.
type Decoder struct {
	schemas *schemas.Set
}

// NewDecoder compiles the embedded schemas.
func NewDecoder() (*Decoder, error) {
	set, err := schemas.Compile()
	if err != nil {
		return nil, err
	}
	return &Decoder{schemas: set}, nil
}

// Schemas returns the compiled schemas (results are validated with them in tests).
func (d *Decoder) Schemas() *schemas.Set { return d.schemas }

// MaxRequestBytes bounds a request body; larger bodies are schema violations.
const MaxRequestBytes = 64 << 10

// Decode decodes a request of the given kind. body may be the plain request or a CloudEvents
// structured-mode envelope ({"specversion": "1.0", ..., "data": {request}}).
// Errors are *CodedError with invalid_json, schema_violation or unsupported_subject; their text
// quotes no request values beyond what the schema names.
func (d *Decoder) Decode(kind contract.Kind, body []byte) (Request, error) {
	var schema schemas.Name
	switch kind {
	case contract.KindCredentialsSubmitted:
		schema = schemas.CredentialsSubmittedRequest
	case contract.KindCustomerOnboarded:
		schema = schemas.CustomerOnboardedRequest
	case contract.KindConnectorDisconnected:
		schema = schemas.ConnectorDisconnectedRequest
	case contract.KindCustomerOffboarded:
		schema = schemas.CustomerOffboardedRequest
	default:
		return Request{Kind: kind}, Coded(contract.CodeUnsupportedSubject, false, errors.New("no request kind is published on this subject"))
	}
	if len(body) > MaxRequestBytes {
		return Request{Kind: kind}, Coded(contract.CodeSchemaViolation, false, fmt.Errorf("request is %d bytes; a request is at most 64 KiB (%d bytes): send references, not data", len(body), MaxRequestBytes))
	}
	body = unwrapCloudEvent(body)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return Request{Kind: kind}, Coded(contract.CodeInvalidJSON, false, errors.New("request is not valid JSON"))
	}
	if err := d.schemas.Validate(schema, doc); err != nil {
		return Request{Kind: kind}, Coded(contract.CodeSchemaViolation, false, explainSchema(kind, doc, err))
	}
	req := Request{Kind: kind}
	switch kind {
	case contract.KindCredentialsSubmitted:
		req.CredentialsSubmitted = new(contract.CredentialsSubmitted)
		err = json.Unmarshal(body, req.CredentialsSubmitted)
	case contract.KindCustomerOnboarded:
		req.CustomerOnboarded = new(contract.CustomerOnboarded)
		err = json.Unmarshal(body, req.CustomerOnboarded)
	case contract.KindConnectorDisconnected:
		req.ConnectorDisconnected = new(contract.ConnectorDisconnected)
		err = json.Unmarshal(body, req.ConnectorDisconnected)
	case contract.KindCustomerOffboarded:
		req.CustomerOffboarded = new(contract.CustomerOffboarded)
		err = json.Unmarshal(body, req.CustomerOffboarded)
	}
	if err != nil { // the schema admitted something the types cannot hold: a contract bug, not bad input
		return Request{Kind: kind}, Coded(contract.CodeSchemaViolation, false, fmt.Errorf("decode: %w", err))
	}
	return req, nil
}

// PeekID returns the id and workspace of a body that failed to decode, if they can be read, so that an
// error result can still be correlated.
func PeekID(body []byte) (id, workspace string) {
	var v struct {
		ID            any `json:"id"`
		WorkspaceName any `json:"workspace_name"`
	}
	if json.Unmarshal(unwrapCloudEvent(body), &v) != nil {
		return "", ""
	}
	id, _ = v.ID.(string)
	workspace, _ = v.WorkspaceName.(string)
	if len(id) > 128 {
		id = ""
	}
	if len(workspace) > 256 {
		workspace = ""
	}
	return id, workspace
}

// unwrapCloudEvent returns the data of a structured-mode CloudEvent, or body itself.
func unwrapCloudEvent(body []byte) []byte {
	if !bytes.Contains(body, []byte(`"specversion"`)) {
		return body
	}
	var ce struct {
		SpecVersion string          `json:"specversion"`
		Data        json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &ce) != nil || ce.SpecVersion == "" || len(ce.Data) == 0 {
		return body
	}
	return ce.Data
}
