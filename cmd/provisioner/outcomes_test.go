package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/metrics"
)

// The metric outcomes the code can emit (every Outcome* constant of internal/provision and
// internal/consumer: the worker passes only those to the metric) are exactly the README's list and
// the metric's label list.
func TestMetricOutcomesMatchTheReadme(t *testing.T) {
	code := outcomeConstants(t, "../../internal/provision", "../../internal/consumer")
	readme := readmeOutcomes(t)
	label := slices.Clone(metrics.DefaultOptions().Outcomes)
	for _, list := range [][]string{code, readme, label} {
		slices.Sort(list)
	}
	for _, tc := range []struct {
		name       string
		have, want []string
	}{
		{"code outcomes documented in the README", code, readme},
		{"README outcomes emitted by the code", readme, code},
		{"code outcomes in the metric's label list", code, label},
		{"label list outcomes emitted by the code", label, code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, o := range tc.have {
				if !slices.Contains(tc.want, o) {
					t.Errorf("%q is missing on the other side (code %q, README %q, label list %q)", o, code, readme, label)
				}
			}
		})
	}
	for _, must := range []string{"workspace_ready", "dead_letter"} {
		if !slices.Contains(code, must) {
			t.Errorf("the code has no %s outcome", must)
		}
	}
}

// outcomeConstants reads the values of the Outcome* string constants of the packages in dirs.
func outcomeConstants(t *testing.T, dirs ...string) []string {
	t.Helper()
	var files []string
	for _, dir := range dirs {
		matched, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(matched) == 0 {
			t.Fatalf("no sources in %s: %v", dir, err)
		}
		files = append(files, matched...)
	}
	fset := token.NewFileSet()
	var out []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Outcome") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out = append(out, v)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no Outcome constants found in %v", dirs)
	}
	return out
}

// readmeOutcomes reads the backticked values of the README's "- `outcome`:" bullet.
func readmeOutcomes(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	bullet := regexp.MustCompile("(?s)\n- `outcome`: (.*?)\n- ").FindSubmatch(b)
	if bullet == nil {
		t.Fatal("README has no \"- `outcome`:\" bullet")
	}
	// values are the backticked words outside parentheses
	text := regexp.MustCompile(`\([^()]*\)`).ReplaceAllString(string(bullet[1]), "")
	var out []string
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}
