package provision

import (
	"context"
	"errors"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/event"
)

// Check statuses Airbyte answers.
const (
	checkSucceeded    = "succeeded"
	checkFailed       = "failed"
	checkPending      = "pending"
	checkRunning      = "running"
	checkInconclusive = "inconclusive"
)

// checkCredentials runs Airbyte's credential check before a create or replace changes anything.
//
//   - succeeded: go on.
//   - failed: credentials_rejected (not retryable) with Airbyte's message; nothing changes.
//   - pending / running: asked again, with backoff, within the delivery's budget. If the budget
//     runs out first, the delivery fails retryably (airbyte_unavailable) and nothing changes: a
//     later delivery checks again, and the last one ends in a retryable error result.
//   - inconclusive, skipped, cancelled, or any status we do not know: the check could not judge
//     the credentials, so it does not block them; the operation goes on as without a check, and the
//     log says so. The check exists to refuse credentials Airbyte knows are bad, not to make the
//     provisioner wait on Airbyte's checking machinery.
func (s *Service) checkCredentials(ctx context.Context, u *upsert) error {
	b := s.cfg.NewBackOff()
	for {
		resp, err := s.airbyte.CheckConnectorConfig(ctx, airbyte.ConnectorSourceCheckConfigRequest{
			Name: u.r.ConnectorName(), WorkspaceName: u.r.WorkspaceName, ConnectorType: u.r.ConnectorType,
			DefinitionID: u.r.DefinitionID, SourceTemplateID: u.r.SourceTemplateID,
			ReplicationConfig: replicationConfig(u.r.ReplicationConfig), Credentials: u.creds,
		})
		if err != nil {
			return classifyAirbyte("check credentials", err)
		}
		switch resp.Status {
		case checkSucceeded:
			return nil
		case checkFailed:
			msg := resp.ErrorMessage
			if msg == "" {
				msg = "the source rejected the credentials"
			}
			// Airbyte's message may quote what it was given: never let a credential through.
			if scrubbed, ok := scrub(msg, secretValues(u.creds)).(string); ok {
				msg = scrubbed
			}
			return event.Coded(contract.CodeCredentialsRejected, false, errors.New(msg))
		case checkPending, checkRunning:
			wait := b.NextBackOff()
			select {
			case <-ctx.Done():
				return event.Coded(contract.CodeAirbyteUnavailable, true, errors.New("the credential check was still "+resp.Status+" when the budget ran out"))
			case <-time.After(wait):
			}
		default:
			u.d.Logger.Warn("the credential check was inconclusive; going on without it", "status", resp.Status)
			return nil
		}
	}
}

// requestsCheck reports whether the request asks for a credential check.
func requestsCheck(r *contract.CredentialsSubmitted) bool { return r.Check }
