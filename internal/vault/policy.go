package vault

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
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

// UsesWorkspaceName reports whether the policy substitutes the workspace name into secret paths,
// so that only names CheckWorkspaceName accepts can ever hold a secret.
func (p *Policy) UsesWorkspaceName() bool {
	return p != nil && slices.Contains(p.segments, WorkspacePlaceholder)
}

// WorkspaceNameError says why a workspace name cannot stand for {workspace_name} in a secret path.
type WorkspaceNameError struct {
	Name   string
	Reason string
}

func (e *WorkspaceNameError) Error() string {
	return "workspace name " + strconv.Quote(e.Name) + " " + e.Reason +
		": a workspace name is one path segment of ASCII letters, digits, '_', '-' and '.' (not dots only, at most " +
		strconv.Itoa(maxSegmentLen) + " characters), e.g. acme or acme-corp"
}

// CheckWorkspaceName checks a workspace name against the rule the policy applies when it puts the
// name into a path (the rule Check uses), and names the first character it refuses. Onboarding and
// `provisioner publish` call it, so that a name no secret could be stored under is refused at once.
func CheckWorkspaceName(name string) error {
	switch {
	case name == "":
		return &WorkspaceNameError{Name: name, Reason: "is empty"}
	case len(name) > maxSegmentLen:
		return &WorkspaceNameError{Name: name, Reason: "is " + strconv.Itoa(len(name)) + " bytes long"}
	case strings.Trim(name, ".") == "":
		return &WorkspaceNameError{Name: name, Reason: "is dots only"}
	}
	if isName(name, maxSegmentLen) {
		return nil
	}
	pos := 0
	for _, r := range name {
		pos++
		if r < utf8.RuneSelf && isName("_"+string(r), maxSegmentLen) { // one allowed byte
			continue
		}
		what := strconv.QuoteRune(r)
		switch r {
		case ' ':
			what = "a space"
		case '/':
			what = "'/' (a path separator)"
		}
		return &WorkspaceNameError{Name: name, Reason: "contains " + what + " at position " + strconv.Itoa(pos)}
	}
	return &WorkspaceNameError{Name: name, Reason: "is not a valid path segment"}
}
