package helmtest

import (
	"testing"
)

// TestStrictDecoderRejects proves the validator is strict: a manifest with an unknown, duplicate
// or mistyped field fails, for core kinds, prometheus-operator kinds and schema-validated CRDs.
func TestStrictDecoderRejects(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		ok   bool
	}{
		{"valid Deployment", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}
`, true},
		{"Deployment with an unknown field", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}
`, false},
		{"ConfigMap with a number value", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: 1}\n", false},
		{"ConfigMap with a duplicate key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  A: a\n  A: b\n", false},
		{"unregistered kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n", false},
		{"valid ServiceMonitor", `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec: {selector: {}, endpoints: [{port: metrics}]}
`, true},
		{"ServiceMonitor with an unknown endpoint field", `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec: {selector: {}, endpoints: [{port: metrics, every: 30s}]}
`, false},
		{"valid ScaledObject", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  triggers: [{type: nats-jetstream, metadata: {stream: S}}]
`, true},
		{"ScaledObject with an unknown spec field", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  minReplicas: 1
  triggers: [{type: nats-jetstream, metadata: {stream: S}}]
`, false},
		{"ScaledObject with a number in trigger metadata", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  triggers: [{type: nats-jetstream, metadata: {lagThreshold: 5}}]
`, false},
		{"ScaledObject without triggers", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec: {scaleTargetRef: {name: x}}
`, false},
		{"ScaledObject with a duplicate key", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  scaleTargetRef: {name: y}
  triggers: [{type: nats-jetstream, metadata: {stream: S}}]
`, false},
	}
	dec := newStrictDecoder(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dec.decode([]byte(tc.doc))
			if (err == nil) != tc.ok {
				t.Errorf("decode error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
