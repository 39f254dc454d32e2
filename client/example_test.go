package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
)

// An app asks for a customer's GitHub connector and waits for the verdict. The credentials stay in
// the secret store; the request names them.
func Example() {
	nc, err := nats.Connect(natsURL) // the app's own connection
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := c.SubmitAndAwait(ctx, &contract.CredentialsSubmitted{
		ID:             "example-acme-github", // the idempotency key; Submit makes one if empty
		WorkspaceName:  "acme",
		ConnectorType:  "github",
		CredentialsRef: "file:acme/github.json",
	})
	var failed *client.ResultError
	switch {
	case errors.As(err, &failed):
		fmt.Println("refused:", failed.Code)
	case errors.Is(err, client.ErrTimeout):
		fmt.Println("no verdict yet; await it again later")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(res.Message, res.RequestID)
	}
	// Output: source_created example-acme-github
}

// An error verdict comes back as a *client.ResultError with its code from the closed list.
func Example_errorVerdict() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err = c.SubmitAndAwait(ctx, &contract.CredentialsSubmitted{
		ID:             "example-acme-hubspot",
		WorkspaceName:  "acme",
		ConnectorType:  "hubspot",
		CredentialsRef: "file:acme/hubspot.json", // nothing stored there
	})
	var failed *client.ResultError
	if errors.As(err, &failed) {
		fmt.Println(failed.Message, failed.Code, "retryable:", failed.Retryable)
		fmt.Println(failed.Code == contract.CodeSecretNotFound)
	}
	// Output:
	// source_create_error secret_not_found retryable: false
	// true
}

// Submitting returns as soon as JetStream holds the request; the same id again is a duplicate.
func ExampleClient_Submit() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	req := &contract.CustomerOnboarded{ID: "example-onboard-globex", WorkspaceName: "globex"}
	for range 2 {
		sub, err := c.Submit(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(sub.RequestID, sub.Subject, "duplicate:", sub.Duplicate)
	}
	// Output:
	// example-onboard-globex provisioner.requests.customer.onboarded duplicate: false
	// example-onboard-globex provisioner.requests.customer.onboarded duplicate: true
}

// A process that restarted (here: a new connection) awaits a request it submitted before; the
// verdict may be long stored.
func ExampleClient_Await() {
	submit := func() string {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			log.Fatal(err)
		}
		defer nc.Close()
		c, err := client.New(nc)
		if err != nil {
			log.Fatal(err)
		}
		sub, err := c.Submit(context.Background(), &contract.CustomerOnboarded{WorkspaceName: "initech"})
		if err != nil {
			log.Fatal(err)
		}
		return sub.RequestID // kept by the app, e.g. in its database
	}
	id := submit()

	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Await(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Message, res.WorkspaceName, res.RequestID == id)
	// Output: workspace_ready initech true
}

// A connector's life from the app: credentials submitted, submitted again (an update), then
// disconnected. Each request has its own id and its own verdict.
func Example_lifecycle() {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, req := range []contract.Request{
		&contract.CredentialsSubmitted{ID: "example-life-1", WorkspaceName: "acme", ConnectorType: "github", Name: "GitHub (life)", CredentialsRef: "file:acme/github.json"},
		&contract.CredentialsSubmitted{ID: "example-life-2", WorkspaceName: "acme", ConnectorType: "github", Name: "GitHub (life)", CredentialsRef: "file:acme/github.json"},
		&contract.ConnectorDisconnected{ID: "example-life-3", WorkspaceName: "acme", ConnectorType: "github", Name: "GitHub (life)"},
	} {
		res, err := c.SubmitAndAwait(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(req.Kind(), "->", res.Message, "revision", res.Revision)
	}
	// Output:
	// credentials_submitted -> source_created revision 1
	// credentials_submitted -> source_updated revision 1
	// connector_disconnected -> source_deleted revision 1
}
