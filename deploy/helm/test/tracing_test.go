package helmtest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// tracing.otlpEndpoint points the worker at a collector through the standard OTEL_* variables;
// without it the container has none of them, and tracing stays off.
func TestTracingValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want map[string]string // OTEL_* variable -> value; nil: none at all
	}{
		{"off by default", nil, nil},
		{"an OTLP collector", []string{"--set", "tracing.otlpEndpoint=http://otel-collector.observability:4318"}, map[string]string{
			"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_TRACES_SAMPLER": "parentbased_always_on",
			"OTEL_SERVICE_NAME": "provisioner", "OTEL_K8S_POD_NAME": "",
			"OTEL_RESOURCE_ATTRIBUTES": "k8s.namespace.name=provisioner,k8s.pod.name=$(OTEL_K8S_POD_NAME),service.instance.id=$(OTEL_K8S_POD_NAME)",
		}},
		{"grpc, a ratio and attributes", []string{"--set", "tracing.otlpEndpoint=http://collector:4317", "--set", "tracing.protocol=grpc",
			"--set", "tracing.sampler=parentbased_traceidratio", "--set-string", "tracing.samplerArg=0.25",
			"--set", "tracing.resourceAttributes=deployment.environment.name=prod"}, map[string]string{
			"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
			"OTEL_SERVICE_NAME": "provisioner", "OTEL_K8S_POD_NAME": "",
			"OTEL_RESOURCE_ATTRIBUTES": "k8s.namespace.name=provisioner,k8s.pod.name=$(OTEL_K8S_POD_NAME),service.instance.id=$(OTEL_K8S_POD_NAME),deployment.environment.name=prod",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, append([]string{"-f", chartDir + "/ci/minimal-values.yaml"}, tc.args...)...)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			objs := decodeStrict(t, out)
			d := only[*appsv1.Deployment](t, objs)
			checkDeploymentInvariants(t, d, configMap(t, objs, releaseName))
			got := map[string]corev1.EnvVar{}
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				if strings.HasPrefix(e.Name, "OTEL_") {
					got[e.Name] = e
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("OTEL variables %v, want %v", got, tc.want)
			}
			for name, value := range tc.want {
				if got[name].Value != value {
					t.Errorf("%s = %q, want %q", name, got[name].Value, value)
				}
			}
			if pod, ok := got["OTEL_K8S_POD_NAME"]; ok && (pod.ValueFrom == nil || pod.ValueFrom.FieldRef == nil || pod.ValueFrom.FieldRef.FieldPath != "metadata.name") {
				t.Errorf("OTEL_K8S_POD_NAME = %+v, want the pod's name", pod)
			}
		})
	}
	refused := []struct {
		name string
		args []string
	}{
		{"an endpoint without a scheme", []string{"--set", "tracing.otlpEndpoint=collector:4317"}},
		{"an unknown protocol", []string{"--set", "tracing.otlpEndpoint=http://c:4318", "--set", "tracing.protocol=thrift"}},
		{"an unknown sampler", []string{"--set", "tracing.sampler=sometimes"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := render(t, append([]string{"-f", chartDir + "/ci/minimal-values.yaml"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), "tracing") {
				t.Errorf("rendered, or refused for another reason: %v", err)
			}
		})
	}
}
