package helmtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../provisioner"
	releaseName = "provisioner"
	namespace   = "provisioner"
	// kubeVersion is passed to helm because a go-installed helm reports v1.20 by default,
	// which the chart's kubeVersion constraint refuses.
	kubeVersion = "1.33.0"
)

// helmPath finds the helm binary: $HELM, then PATH, then $(go env GOPATH)/bin.
func helmPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "helm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("helm not found: set HELM, put it on PATH, or run `make helm-test` which installs it")
	return ""
}

// runHelm runs helm and returns its stdout; a non-zero exit becomes an error carrying stderr.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmPath(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// render runs helm template with the given extra arguments (values files, --set).
func render(t *testing.T, args ...string) (string, error) {
	t.Helper()
	base := []string{"template", releaseName, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
	return runHelm(t, append(base, args...)...)
}

// strictDecoder decodes manifests into Go types or, for the CRDs in crdFiles, through their schema,
// failing on any unknown, duplicate or mistyped field.
type strictDecoder struct {
	core runtime.Decoder
	crds map[schema.GroupVersionKind]*validate.SchemaValidator
}

func newStrictDecoder(t *testing.T) *strictDecoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatalf("build scheme: %v", err)
		}
	}
	return &strictDecoder{
		core: json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true}),
		crds: crdSchemas(t),
	}
}

// decode decodes one YAML document.
func (d *strictDecoder) decode(doc []byte) (runtime.Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	if v, ok := d.crds[tm.GroupVersionKind()]; ok {
		return validateCustomResource(v, doc)
	}
	obj, gvk, err := d.core.Decode(doc, nil, nil)
	if err != nil {
		return nil, err
	}
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		obj.GetObjectKind().SetGroupVersionKind(*gvk)
	}
	return obj, nil
}

// decodeStrict splits a multi-document manifest and decodes every document strictly.
func decodeStrict(t *testing.T, manifest string) []runtime.Object {
	t.Helper()
	dec := newStrictDecoder(t)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var objs []runtime.Object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("split manifest: %v", err)
		}
		if onlyComments(doc) {
			continue
		}
		obj, err := dec.decode(doc)
		if err != nil {
			t.Fatalf("strict decode: %v\n---\n%s", err, doc)
		}
		objs = append(objs, obj)
	}
}

// onlyComments reports whether a document holds nothing but comments and blank lines.
func onlyComments(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}
