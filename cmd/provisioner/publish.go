package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/tracing"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

var publishHelp = help{
	usage: []string{
		"provisioner publish credentials|onboarded|disconnected|offboarded [flags]",
		"provisioner publish --kind credentials|onboarded|disconnected|offboarded --file REQUEST.json [flags]",
	},
	about: "Publish a request, validated first against its schema and the workspace-name rule of --secret-path-policy.\n" +
		"A request is at most 64 KiB. Nats-Msg-Id is the request id: a second publish within the duplicate window is dropped.",
	env: true,
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := flag.NewFlagSet("provisioner publish", flag.ContinueOnError)
	publishHelp.install(fs, stderr)
	cf.register(fs, requestsStreamFlag, resultsStreamFlag)
	file := fs.String("file", "", "read the request from this JSON file (- for stdin)")
	kindFlag := fs.String("kind", "", "request kind with --file: credentials (credentials.submitted), onboarded (customer.onboarded), disconnected (connector.disconnected) or offboarded (customer.offboarded)")
	id := fs.String("id", "", "request id (default: a new UUID)")
	workspace := fs.String("workspace", "", "workspace name (the customer)")
	connectorType := fs.String("connector-type", "", "connector type, e.g. github")
	definitionID := fs.String("definition-id", "", "connector definition id (instead of --connector-type)")
	templateID := fs.String("source-template-id", "", "source template id (instead of --connector-type)")
	name := fs.String("name", "", "connector name")
	ref := fs.String("credentials-ref", "", "secret reference, e.g. file:customers/acme/github.json")
	replication := fs.String("replication-config", "", "non-secret connector settings as a JSON object")
	region := fs.String("region-id", "", "region of a new workspace (onboarded)")
	check := fs.Bool("check", false, "run Airbyte's credential check before creating or replacing the connector (credentials)")
	workspaceAction := fs.String("workspace-action", "", "what becomes of the workspace after its connectors are deleted (offboarded): keep (default), deactivate or delete")
	noValidate := fs.Bool("no-validate", false, "publish even if the request breaks the schema (to test the worker's error path)")
	policy := fs.String("secret-path-policy", "", "the worker's --secret-path-policy: workspace names are checked against its rule (default: the rule of any policy with {workspace_name}; none = no check)")
	wait := fs.Bool("wait", false, "wait for the request's verdict and print it; exit 0 on success, 1 on an error verdict, 3 on timeout")
	timeout := fs.Duration("timeout", time.Minute, "with --wait: how long to wait for the verdict (0 = no limit)")
	asJSON := fs.Bool("json", false, "with --wait: print the verdict as one JSON line")

	// the kind may come first: publish credentials --workspace ...
	kind := ""
	if len(args) > 0 && (args[0] == "credentials" || args[0] == "onboarded" || args[0] == "disconnected" || args[0] == "offboarded") {
		kind, args = args[0], args[1:]
	}
	if err := cf.parse(fs, args); err != nil {
		return err
	}
	if *kindFlag != "" {
		kind = *kindFlag
	}
	checkName, err := nameRule(*policy)
	if err != nil {
		return err
	}
	var k contract.Kind
	switch kind {
	case "credentials", "credentials.submitted":
		k = contract.KindCredentialsSubmitted
	case "onboarded", "customer.onboarded":
		k = contract.KindCustomerOnboarded
	case "disconnected", "connector.disconnected":
		k = contract.KindConnectorDisconnected
	case "offboarded", "customer.offboarded":
		k = contract.KindCustomerOffboarded
	default:
		return usagef("say which request: credentials, onboarded, disconnected or offboarded (got %q)", kind)
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
		switch k {
		case contract.KindCredentialsSubmitted, contract.KindConnectorDisconnected:
			fields := map[string]string{"connector_type": *connectorType, "definition_id": *definitionID, "source_template_id": *templateID, "name": *name}
			if k == contract.KindCredentialsSubmitted {
				fields["credentials_ref"] = *ref
				if *check {
					req["check"] = true
				}
			}
			for key, v := range fields {
				if v != "" {
					req[key] = v
				}
			}
			if *replication != "" && k == contract.KindCredentialsSubmitted {
				var rc map[string]any
				if err := json.Unmarshal([]byte(*replication), &rc); err != nil {
					return usagef("--replication-config: not a JSON object: %v", err)
				}
				req["replication_config"] = rc
			}
		case contract.KindCustomerOnboarded:
			if *region != "" {
				req["region_id"] = *region
			}
		case contract.KindCustomerOffboarded:
			if *workspaceAction != "" {
				req["workspace"] = *workspaceAction
			}
		}
		body, _ = json.Marshal(req)
	}
	if !*noValidate { // before connecting: a bad request is a usage error wherever NATS is
		dec, err := event.NewDecoder()
		if err != nil {
			return err
		}
		r, err := dec.Decode(k, body)
		if err != nil {
			return usagef("request is invalid: %v", err)
		}
		if checkName != nil {
			if err := checkName(r.WorkspaceName()); err != nil {
				return usagef("request is invalid: %v", err)
			}
		}
	}
	tp, stopTracing, err := startTracing(ctx, "", slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer stopTracing()
	nc, _, err := cf.connect(stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := cf.client(nc, client.WithTracerProvider(tp)) // the request's trace starts here
	if err != nil {
		return err
	}
	var sub *client.Submission
	if *noValidate {
		sub, err = publishUnvalidated(ctx, nc, cf.topology().RequestSubject(k.SubjectSuffix()), body, tp)
	} else {
		sub, err = c.SubmitJSON(ctx, k, body)
	}
	var invalid *client.InvalidRequestError
	if errors.As(err, &invalid) {
		return usagef("request is invalid: %v", invalid.Err)
	}
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	dup := ""
	if sub.Duplicate {
		dup = " (duplicate: already published)"
	}
	fmt.Fprintf(stdout, "published request %s to %s (stream %s, seq %d)%s\n", sub.RequestID, sub.Subject, sub.Stream, sub.Sequence, dup)
	if !*wait {
		return nil
	}
	if sub.RequestID == "" {
		return usagef("--wait: the request has no readable id")
	}
	return awaitVerdict(ctx, c, sub.RequestID, *timeout, *asJSON, stdout)
}

// publishUnvalidated publishes body as it is, with Nats-Msg-Id = its id if it has a readable one.
func publishUnvalidated(ctx context.Context, nc *nats.Conn, subject string, body []byte, tp trace.TracerProvider) (*client.Submission, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	id, _ := event.PeekID(body)
	if id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	msg.Header.Set("content-type", "application/json")
	ctx, span := tracing.StartPublish(ctx, tp, msg, "")
	ack, err := js.PublishMsg(ctx, msg)
	span.End(err, "")
	if err != nil {
		return nil, err
	}
	return &client.Submission{RequestID: id, Subject: subject, Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// awaitVerdict prints a request's verdict and returns nil for a success, a *client.ResultError for
// an error verdict (exit 1) and an error matching client.ErrTimeout when none came in time (exit 3).
func awaitVerdict(ctx context.Context, c *client.Client, requestID string, timeout time.Duration, asJSON bool, stdout io.Writer) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := c.Await(ctx, requestID)
	if res != nil {
		data, merr := json.Marshal(res)
		if merr != nil {
			return merr
		}
		printResult(stdout, data, asJSON)
	}
	return err
}

// nameRule is the worker's workspace-name rule (the function onboarding uses), or nil when the
// policy does not put workspace names into paths. Without a policy it assumes one that does, the
// usual case, since run requires a policy.
func nameRule(policy string) (func(string) error, error) {
	switch policy {
	case "":
	case config.NoSecretPathPolicy:
		return nil, nil
	default:
		p, err := vault.NewPolicy(policy)
		if err != nil {
			return nil, usagef("--secret-path-policy: %v", err)
		}
		if !p.UsesWorkspaceName() {
			return nil, nil
		}
	}
	return vault.CheckWorkspaceName, nil
}
