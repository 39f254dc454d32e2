package vault

import (
	"errors"
	"strings"
)

// WorkspacePlaceholder is the one placeholder a policy template may contain.
const WorkspacePlaceholder = "{workspace_name}"

// Policy confines the secret references of a request to a per-workspace path prefix, compared
// on whole path segments. It applies to the reference's path whatever the scheme, so under a
// template with several segments env references (one segment) are always forbidden.
//
// The workspace name is substituted as one path segment and must itself be a valid segment
// (ASCII letters, digits, '_', '-', '.', not dots only). Names that are not (empty, ".", "..",
// containing '/', spaces, unicode, NUL...) are rejected, not escaped: escaping would need the
// application to write its secrets under the escaped path, and rejecting can never widen a prefix.
type Policy struct {
	// segments of the template; WorkspacePlaceholder stands for the workspace name. Nil means
	// no restriction.
	segments []string
}

// NewPolicy parses a template such as "customers/{workspace_name}/". The trailing slash is
// optional; the placeholder must be a whole segment. An empty template places no restriction.
func NewPolicy(template string) (*Policy, error) {
	if template == "" {
		return &Policy{}, nil
	}
	trimmed := strings.TrimSuffix(template, "/")
	if trimmed == "" || strings.HasPrefix(trimmed, "/") {
		return nil, errors.New("secret policy template must be a relative path such as customers/{workspace_name}/")
	}
	segs := strings.Split(trimmed, "/")
	for _, seg := range segs {
		if seg == WorkspacePlaceholder {
			continue
		}
		if strings.ContainsAny(seg, "{}") {
			return nil, errors.New("secret policy template: the only placeholder is {workspace_name}, as a whole path segment")
		}
		if !isName(seg, maxSegmentLen) {
			return nil, errors.New("secret policy template: segments must be non-empty letters, digits, '_', '-' or '.', not dots only")
		}
	}
	return &Policy{segments: segs}, nil
}

// Check reports whether ref may be used by a request for workspaceName: a *ForbiddenError if
// not (also on a nil Policy), a *RefError if ref itself is malformed.
func (p *Policy) Check(ref Ref, workspaceName string) error {
	if err := ref.validate(); err != nil {
		return err
	}
	if p == nil { // a missing policy is a wiring bug: fail closed
		return &ForbiddenError{Ref: ref, Workspace: workspaceName, Reason: "no secret policy configured"}
	}
	if len(p.segments) == 0 {
		return nil
	}
	prefix := make([]string, len(p.segments))
	for i, seg := range p.segments {
		if seg == WorkspacePlaceholder {
			if !isName(workspaceName, maxSegmentLen) {
				return &ForbiddenError{Ref: ref, Workspace: workspaceName,
					Reason: "workspace name cannot be used in a secret path (letters, digits, '_', '-', '.' only)"}
			}
			seg = workspaceName
		}
		prefix[i] = seg
	}
	refSegs := strings.Split(ref.Path, "/")
	if len(refSegs) < len(prefix) {
		return p.forbidden(ref, workspaceName, prefix)
	}
	for i, seg := range prefix {
		if refSegs[i] != seg {
			return p.forbidden(ref, workspaceName, prefix)
		}
	}
	return nil
}

func (p *Policy) forbidden(ref Ref, workspaceName string, prefix []string) error {
	return &ForbiddenError{Ref: ref, Workspace: workspaceName,
		Reason: "path is not under " + strings.Join(prefix, "/") + "/"}
}
