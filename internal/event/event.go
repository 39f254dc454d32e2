// Package event decodes and validates the requests of the provisioner's v1 contract (the types are
// the public ones of package contract) against schemas/, and gives the worker its coded errors and
// the error results it builds from them.
package event

import "github.com/provisioner-dev/provisioner/contract"

// Request is a decoded, valid request: exactly one of the pointers is set.
type Request struct {
	Kind                  contract.Kind
	CredentialsSubmitted  *contract.CredentialsSubmitted
	CustomerOnboarded     *contract.CustomerOnboarded
	ConnectorDisconnected *contract.ConnectorDisconnected
	CustomerOffboarded    *contract.CustomerOffboarded
}

// ID is the request id.
func (r Request) ID() string {
	switch {
	case r.CredentialsSubmitted != nil:
		return r.CredentialsSubmitted.ID
	case r.CustomerOnboarded != nil:
		return r.CustomerOnboarded.ID
	case r.ConnectorDisconnected != nil:
		return r.ConnectorDisconnected.ID
	case r.CustomerOffboarded != nil:
		return r.CustomerOffboarded.ID
	}
	return ""
}

// WorkspaceName is the request's workspace.
func (r Request) WorkspaceName() string {
	switch {
	case r.CredentialsSubmitted != nil:
		return r.CredentialsSubmitted.WorkspaceName
	case r.CustomerOnboarded != nil:
		return r.CustomerOnboarded.WorkspaceName
	case r.ConnectorDisconnected != nil:
		return r.ConnectorDisconnected.WorkspaceName
	case r.CustomerOffboarded != nil:
		return r.CustomerOffboarded.WorkspaceName
	}
	return ""
}
