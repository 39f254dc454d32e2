package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
)

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := flag.NewFlagSet("provisioner publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: provisioner publish credentials|onboarded [flags]   or   provisioner publish --file REQUEST.json --kind credentials|onboarded")
		fs.PrintDefaults()
	}
	cf.register(fs)
	file := fs.String("file", "", "read the request from this JSON file (- for stdin)")
	kindFlag := fs.String("kind", "", "request kind with --file: credentials (credentials.submitted) or onboarded (customer.onboarded)")
	id := fs.String("id", "", "request id (default: a new UUID)")
	workspace := fs.String("workspace", "", "workspace name (the customer)")
	connectorType := fs.String("connector-type", "", "connector type, e.g. github")
	definitionID := fs.String("definition-id", "", "connector definition id (instead of --connector-type)")
	templateID := fs.String("source-template-id", "", "source template id (instead of --connector-type)")
	name := fs.String("name", "", "connector name")
	ref := fs.String("credentials-ref", "", "secret reference, e.g. file:customers/acme/github.json")
	replication := fs.String("replication-config", "", "non-secret connector settings as a JSON object")
	region := fs.String("region-id", "", "region of a new workspace (onboarded)")
	noValidate := fs.Bool("no-validate", false, "publish even if the request breaks the schema (to test the worker's error path)")

	// the kind may come first: publish credentials --workspace ...
	kind := ""
	if len(args) > 0 && (args[0] == "credentials" || args[0] == "onboarded") {
		kind, args = args[0], args[1:]
	}
	if err := cf.parse(fs, args); err != nil {
		return err
	}
	if *kindFlag != "" {
		kind = *kindFlag
	}
	var k contract.Kind
	switch kind {
	case "credentials", "credentials.submitted":
		k = contract.KindCredentialsSubmitted
	case "onboarded", "customer.onboarded":
		k = contract.KindCustomerOnboarded
	default:
		return usagef("say which request: credentials or onboarded (got %q)", kind)
	}

	var body []byte
	if *file != "" {
		var err error
		if *file == "-" {
			body, err = io.ReadAll(os.Stdin)
		} else {
			body, err = os.ReadFile(*file)
		}
		if err != nil {
			return usagef("--file: %v", err)
		}
	} else {
		if *id == "" {
			*id = uuid.NewString()
		}
		req := map[string]any{"id": *id, "workspace_name": *workspace, "occurred_at": time.Now().UTC().Format(time.RFC3339)}
		if k == contract.KindCredentialsSubmitted {
			for key, v := range map[string]string{"connector_type": *connectorType, "definition_id": *definitionID, "source_template_id": *templateID, "name": *name, "credentials_ref": *ref} {
				if v != "" {
					req[key] = v
				}
			}
			if *replication != "" {
				var rc map[string]any
				if err := json.Unmarshal([]byte(*replication), &rc); err != nil {
					return usagef("--replication-config: not a JSON object: %v", err)
				}
				req["replication_config"] = rc
			}
		} else if *region != "" {
			req["region_id"] = *region
		}
		body, _ = json.Marshal(req)
	}
	reqID := ""
	if !*noValidate {
		dec, err := event.NewDecoder()
		if err != nil {
			return err
		}
		r, err := dec.Decode(k, body)
		if err != nil {
			return usagef("request is invalid: %v", err)
		}
		reqID = r.ID()
	}

	nc, js, err := cf.connect(stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	msg := &nats.Msg{Subject: cf.topology().RequestSubject(k.SubjectSuffix()), Data: body, Header: nats.Header{}}
	if reqID != "" {
		// a second publish of the same request within the duplicate window is dropped by JetStream
		msg.Header.Set(jetstream.MsgIDHeader, reqID)
	}
	msg.Header.Set("content-type", "application/json")
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	dup := ""
	if ack.Duplicate {
		dup = " (duplicate: already published)"
	}
	fmt.Fprintf(stdout, "published request %s to %s (stream %s, seq %d)%s\n", reqID, msg.Subject, ack.Stream, ack.Sequence, dup)
	return nil
}
