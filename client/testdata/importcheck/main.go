// Command importcheck is an app in a module of its own: it compiles only if the provisioner's client
// and contract packages are importable from outside the repository (client/importable_test.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
)

func main() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer nc.Close()
	c, err := client.New(nc, client.WithSubjectPrefix("provisioner"), client.WithRequestsStream(contract.DefaultRequestsStream),
		client.WithResultsStream(contract.DefaultResultsStream), client.WithRecheckInterval(5*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var req contract.Request = &contract.CredentialsSubmitted{WorkspaceName: "acme", ConnectorType: "github", CredentialsRef: "vault:customers/acme/github"}
	sub, err := c.Submit(ctx, req)
	var invalid *client.InvalidRequestError
	if errors.As(err, &invalid) {
		fmt.Println("invalid:", invalid.Code)
		os.Exit(2)
	}
	if err != nil {
		os.Exit(1)
	}
	var res *contract.Result
	res, err = c.Await(ctx, sub.RequestID)
	var failed *client.ResultError
	switch {
	case errors.As(err, &failed):
		fmt.Println(failed.Code == contract.CodeSecretNotFound, failed.Retryable, failed.Result.Error.Message)
	case errors.Is(err, client.ErrTimeout):
		os.Exit(3)
	case err == nil:
		fmt.Println(res.Message == contract.MessageSourceCreated, res.RequestID, sub.Duplicate)
	}
	for _, r := range []contract.Request{
		contract.CustomerOnboarded{WorkspaceName: "acme"},
		&contract.ConnectorDisconnected{WorkspaceName: "acme", ConnectorType: "github"},
		&contract.CustomerOffboarded{WorkspaceName: "acme", Workspace: contract.WorkspaceDeactivate},
	} {
		if res, err := c.SubmitAndAwait(ctx, r); err == nil {
			fmt.Println(r.Kind(), res.Message, res.Revision)
		}
	}
	_, _ = c.SubmitJSON(ctx, contract.KindCustomerOnboarded, []byte(`{"id":"x","workspace_name":"acme"}`))
}
