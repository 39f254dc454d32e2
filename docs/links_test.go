// Package docs holds the project's documentation; its test keeps every relative link of every
// Markdown file in the repository pointing at something inside the repository.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// [text](target) and ![alt](target), with an optional "title".
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// [label]: target
	referenceLink = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	fence         = regexp.MustCompile("(?ms)^\\s*(```|~~~).*?^\\s*(```|~~~)\\s*$")
	inlineCode    = regexp.MustCompile("`[^`\n]*`")
	scheme        = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// brokenLinks returns "file: target (why)" for every relative link of a Markdown file under root
// that does not resolve to an existing file or directory inside root.
func brokenLinks(t *testing.T, root string) []string {
	t.Helper()
	root, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	var broken []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.EqualFold(filepath.Ext(path), ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, target := range linkTargets(string(b)) {
			if why := resolve(root, filepath.Dir(path), target); why != "" {
				broken = append(broken, rel+": "+target+" ("+why+")")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return broken
}

// linkTargets lists the link targets of a Markdown text, outside code blocks and code spans.
func linkTargets(text string) []string {
	text = fence.ReplaceAllString(text, "")
	text = inlineCode.ReplaceAllString(text, "")
	var targets []string
	for _, re := range []*regexp.Regexp{inlineLink, referenceLink} {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
	}
	return targets
}

// resolve says why a link target is broken, or "" when it is fine. Links with a scheme (https:,
// mailto:) and same-page anchors are not the walker's business.
func resolve(root, dir, target string) string {
	if scheme.MatchString(target) || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "//") {
		return ""
	}
	path, _, _ := strings.Cut(target, "#")
	path, _, _ = strings.Cut(path, "?")
	if path == "" {
		return ""
	}
	var abs string
	if strings.HasPrefix(path, "/") {
		abs = filepath.Join(root, filepath.FromSlash(path))
	} else {
		abs = filepath.Join(dir, filepath.FromSlash(path))
	}
	if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "outside the repository"
	}
	if _, err := os.Stat(abs); err != nil {
		return "no such file"
	}
	return ""
}

func TestEveryRelativeLinkResolvesInsideTheRepository(t *testing.T) {
	if broken := brokenLinks(t, ".."); len(broken) > 0 {
		t.Errorf("broken links:\n  %s", strings.Join(broken, "\n  "))
	}
}

// The walker itself: it must catch what it is there to catch.
func TestLinkWalker(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		wantBroken []string
	}{
		{"relative link to a file", map[string]string{"README.md": "see [docs](docs/a.md)", "docs/a.md": "x"}, nil},
		{"link with an anchor and a title", map[string]string{"docs/a.md": `[b](b.md#part "title")`, "docs/b.md": "x"}, nil},
		{"link to a directory", map[string]string{"README.md": "[d](docs/)", "docs/a.md": "x"}, nil},
		{"reference link", map[string]string{"README.md": "[a][1]\n\n[1]: docs/a.md\n", "docs/a.md": "x"}, nil},
		{"external links and anchors", map[string]string{"README.md": "[w](https://example.com) [m](mailto:a@b.c) [h](#top)"}, nil},
		{"links in code are not links", map[string]string{"README.md": "```\n[x](nowhere.md)\n```\n`[y](nowhere.md)`"}, nil},
		{"missing file", map[string]string{"README.md": "[x](docs/missing.md)"}, []string{"README.md: docs/missing.md (no such file)"}},
		{"outside the repository", map[string]string{"docs/a.md": "[d](../../shared/DESIGN.md)"}, []string{"docs/a.md: ../../shared/DESIGN.md (outside the repository)"}},
		{"image", map[string]string{"README.md": "![logo](img/logo.png)"}, []string{"README.md: img/logo.png (no such file)"}},
		{"nested README", map[string]string{"internal/x/README.md": "[up](../../missing.md)"}, []string{filepath.FromSlash("internal/x/README.md") + ": ../../missing.md (no such file)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "repo")
			for name, text := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := brokenLinks(t, root)
			if strings.Join(got, "\n") != strings.Join(tc.wantBroken, "\n") {
				t.Errorf("broken = %q, want %q", got, tc.wantBroken)
			}
		})
	}
}
