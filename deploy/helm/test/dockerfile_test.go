package helmtest

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // upper case, e.g. FROM
	args string
}

// parseDockerfile reads the instructions of a Dockerfile, skipping comments and parser directives.
func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out
}

// TestDockerfile checks the image recipe, since no Docker engine runs in CI: the builder's Go
// matches go.mod, the build is static and stamped, and the final stage is distroless, non-root,
// runs `/provisioner run` and exposes the metrics port.
func TestDockerfile(t *testing.T) {
	src, err := os.ReadFile("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	goMinor := string(m[1])

	ins := parseDockerfile(string(src))
	var froms []instruction
	lastFrom := 0
	for i, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in)
			lastFrom = i
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %d FROM", len(froms))
	}
	final := ins[lastFrom:]
	has := func(list []instruction, cmd, args string) bool {
		return slices.Contains(list, instruction{cmd: cmd, args: args})
	}

	tests := []struct {
		name string
		ok   bool
	}{
		{"ARG GO_VERSION matches go.mod's go line " + goMinor, has(ins, "ARG", "GO_VERSION="+goMinor)},
		{"builder is the golang image at GO_VERSION", strings.Contains(froms[0].args, "golang:${GO_VERSION}")},
		{"final stage is distroless static nonroot", froms[len(froms)-1].args == "gcr.io/distroless/static-debian12:nonroot"},
		{"static, trimmed, stamped build", slices.ContainsFunc(ins, func(in instruction) bool {
			return in.cmd == "RUN" && strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "go build -trimpath -ldflags \"${LDFLAGS}\"") &&
				strings.Contains(in.args, "./cmd/provisioner")
		})},
		{"LDFLAGS default stamps main.version and main.commit", has(ins, "ARG", `LDFLAGS="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}"`)},
		{"binary copied to /provisioner", has(final, "COPY", "--from=build /out/provisioner /provisioner")},
		{"runs as 65532", has(final, "USER", "65532:65532")},
		{"exposes the metrics port", has(final, "EXPOSE", "9090")},
		{"entrypoint is /provisioner in exec form", has(final, "ENTRYPOINT", `["/provisioner"]`)},
		{"default command is run", has(final, "CMD", `["run"]`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("Dockerfile: %s does not hold", tc.name)
			}
		})
	}
}

func TestParseDockerfile(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []instruction
	}{
		{"comments and directives skipped", "# syntax=docker/dockerfile:1\n# c\nFROM a AS b\n", []instruction{{"FROM", "a AS b"}}},
		{"continuations joined", "RUN a \\\n    b \\\n  c\nCMD [\"x\"]\n", []instruction{{"RUN", "a b c"}, {"CMD", `["x"]`}}},
		{"lower-case instruction", "from a\n", []instruction{{"FROM", "a"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseDockerfile(tc.src); !slices.Equal(got, tc.want) {
				t.Errorf("parseDockerfile = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzParseDockerfile: any input parses without panicking into upper-case, space-free commands.
func FuzzParseDockerfile(f *testing.F) {
	if src, err := os.ReadFile("../../../Dockerfile"); err == nil {
		f.Add(string(src))
	}
	f.Add("FROM a\nRUN b \\\n c\n")
	f.Add("\\\n\\")
	f.Fuzz(func(t *testing.T, src string) {
		for _, in := range parseDockerfile(src) {
			if strings.ContainsAny(in.cmd, " \n") || in.cmd != strings.ToUpper(in.cmd) {
				t.Fatalf("bad command %q from %q", in.cmd, src)
			}
		}
	})
}
