package schemas_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/schemas"
)

// schemaFor maps an example file name to the schema it exemplifies: the part before the first dot.
func schemaFor(t *testing.T, file string) schemas.Name {
	t.Helper()
	prefix := strings.SplitN(filepath.Base(file), ".", 2)[0]
	for _, n := range schemas.All {
		if strings.HasPrefix(string(n), prefix+".") {
			return n
		}
	}
	t.Fatalf("no schema for example %s", file)
	return ""
}

func TestExamples(t *testing.T) {
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join("examples", dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no examples in %s: %v", dir, err)
		}
		for _, f := range files {
			t.Run(dir+"/"+filepath.Base(f), func(t *testing.T) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				err = set.ValidateJSON(schemaFor(t, f), b)
				switch dir {
				case "valid":
					if err != nil {
						t.Fatalf("valid example rejected: %v", err)
					}
				case "invalid":
					var ve *schemas.ValidationError
					if !errors.As(err, &ve) {
						t.Fatalf("invalid example accepted (err=%v)", err)
					}
					if len(ve.Violations) == 0 {
						t.Fatal("no violations listed")
					}
				}
			})
		}
	}
}

func TestEverySchemaHasAValidExample(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("examples", "valid", "*.json"))
	covered := map[schemas.Name]bool{}
	for _, f := range files {
		covered[schemaFor(t, f)] = true
	}
	for _, n := range schemas.All {
		if !covered[n] {
			t.Errorf("schema %s has no valid example", n)
		}
	}
}

func TestResultSchema(t *testing.T) {
	for _, tc := range []struct {
		message string
		want    schemas.Name
		ok      bool
	}{
		{"source_created", schemas.SourceCreatedResult, true},
		{"source_create_error", schemas.SourceCreateErrorResult, true},
		{"workspace_ready", schemas.WorkspaceReadyResult, true},
		{"workspace_error", schemas.WorkspaceErrorResult, true},
		{"credentials_submitted", "", false},
	} {
		t.Run(tc.message, func(t *testing.T) {
			got, ok := schemas.ResultSchema(tc.message)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ResultSchema(%q) = %q, %v", tc.message, got, ok)
			}
		})
	}
}
