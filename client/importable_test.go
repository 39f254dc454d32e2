package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// internalType matches a qualified identifier of one of the module's internal packages.
var internalType = regexp.MustCompile(`\b(event|consumer|app|config|natsembed)\.[A-Z]`)

// The client and contract packages are importable from another module (testdata/importcheck, which
// requires this module through a replace directive), and their API names no internal type.
func TestImportableFromAnotherModule(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	t.Run("build", func(t *testing.T) {
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(t.TempDir(), "importcheck"), ".")
		cmd.Dir = filepath.Join("testdata", "importcheck")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build in a module of its own: %v\n%s", err, out)
		}
	})
	for _, pkg := range []string{"./", "../contract"} {
		t.Run("API of "+pkg, func(t *testing.T) {
			cmd := exec.Command(goBin, "doc", "-all", pkg)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go doc: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "/internal/") || internalType.Match(out) {
				t.Errorf("the public API mentions an internal package:\n%s", out)
			}
		})
	}
}
