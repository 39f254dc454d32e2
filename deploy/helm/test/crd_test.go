package helmtest

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/yaml"
)

// crdFiles are CustomResourceDefinitions validated through their OpenAPI schema rather than Go
// types (KEDA's Go types pull in controller-runtime and the whole typed clientset).
var crdFiles = []string{"testdata/crds/keda.sh_scaledobjects.yaml"}

// crdSchemas maps each served version of the CRDs above to a strict validator of its schema.
func crdSchemas(t *testing.T) map[schema.GroupVersionKind]*validate.SchemaValidator {
	t.Helper()
	out := map[schema.GroupVersionKind]*validate.SchemaValidator{}
	for _, path := range crdFiles {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Served bool   `json:"served"`
					Schema struct {
						OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			var s spec.Schema
			if err := json.Unmarshal(v.Schema.OpenAPIV3Schema, &s); err != nil {
				t.Fatalf("%s %s: %v", path, v.Name, err)
			}
			closeObjects(&s)
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			out[gvk] = validate.NewSchemaValidator(&s, nil, "", strfmt.Default)
		}
	}
	return out
}

// closeObjects forbids properties a schema does not list, unless it preserves unknown fields:
// what the API server enforces with fieldValidation=Strict (plain OpenAPI would allow them).
func closeObjects(s *spec.Schema) {
	if s == nil {
		return
	}
	preserve, _ := s.Extensions.GetBool("x-kubernetes-preserve-unknown-fields")
	if len(s.Properties) > 0 && s.AdditionalProperties == nil && !preserve {
		s.AdditionalProperties = &spec.SchemaOrBool{Allows: false}
	}
	for name, p := range s.Properties {
		closeObjects(&p)
		s.Properties[name] = p
	}
	if s.Items != nil {
		closeObjects(s.Items.Schema)
		for i := range s.Items.Schemas {
			closeObjects(&s.Items.Schemas[i])
		}
	}
	if s.AdditionalProperties != nil {
		closeObjects(s.AdditionalProperties.Schema)
	}
	for _, list := range [][]spec.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range list {
			closeObjects(&list[i])
		}
	}
}

// validateCustomResource checks one YAML document against its CRD schema and returns it as
// unstructured content.
func validateCustomResource(v *validate.SchemaValidator, doc []byte) (*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var content map[string]any
	if err := json.Unmarshal(js, &content); err != nil {
		return nil, err
	}
	if res := v.Validate(content); !res.IsValid() {
		return nil, fmt.Errorf("schema validation: %w", res.AsError())
	}
	return &unstructured.Unstructured{Object: content}, nil
}
