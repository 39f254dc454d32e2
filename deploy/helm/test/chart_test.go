package helmtest

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// renderCase is one set of values the chart must render and validate with.
type renderCase struct {
	name   string
	args   []string
	golden string   // file under testdata/ holding the expected manifest; empty for none
	kinds  []string // every kind rendered, sorted
	check  func(t *testing.T, objs []runtime.Object)
}

var renderCases = []renderCase{
	{
		// the defaults refuse to render (no Airbyte client id, no secret backend); this is the least added
		name:   "minimal values",
		args:   []string{"-f", chartDir + "/ci/minimal-values.yaml"},
		golden: "minimal.yaml",
		kinds:  []string{"ConfigMap", "Deployment", "Pod", "PodDisruptionBudget", "Service", "ServiceAccount"},
		check: func(t *testing.T, objs []runtime.Object) {
			d := only[*appsv1.Deployment](t, objs)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
			}
			if got := d.Spec.Template.Spec.AutomountServiceAccountToken; got == nil || *got {
				t.Errorf("automountServiceAccountToken = %v, want false without Vault kubernetes auth", got)
			}
		},
	},
	{
		name:   "every optional part on",
		args:   []string{"-f", chartDir + "/ci/all-on-values.yaml"},
		golden: "all-on.yaml",
		kinds: []string{"ConfigMap", "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "Pod",
			"PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor"},
		check: func(t *testing.T, objs []runtime.Object) {
			d := only[*appsv1.Deployment](t, objs)
			if d.Spec.Replicas != nil {
				t.Errorf("replicas = %d with an autoscaler, want unset", *d.Spec.Replicas)
			}
			if got := d.Spec.Template.Spec.AutomountServiceAccountToken; got == nil || !*got {
				t.Errorf("automountServiceAccountToken = %v, want true for Vault kubernetes auth", got)
			}
			cm := configMap(t, objs, releaseName)
			for key, want := range map[string]string{
				"PROVISIONER_NATS_CREDS":         "/etc/provisioner/nats-auth/provisioner.creds",
				"PROVISIONER_NATS_TLS_CERT":      "/etc/provisioner/nats-tls/tls.crt",
				"PROVISIONER_VAULT_AUTH":         "kubernetes",
				"PROVISIONER_VAULT_CA_CERT":      "/etc/provisioner/vault-tls/ca.crt",
				"PROVISIONER_SECRETS_DIR":        "/etc/provisioner/secrets",
				"PROVISIONER_SECRETS_ENV":        "true",
				"PROVISIONER_AIRBYTE_RATE_LIMIT": "2.5",
			} {
				if got := cm.Data[key]; got != want {
					t.Errorf("ConfigMap %s = %q, want %q", key, got, want)
				}
			}
			mounts := map[string]string{}
			for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
				mounts[m.Name] = m.MountPath
			}
			for _, name := range []string{"tmp", "nats-auth", "nats-tls", "vault-tls", "file-secrets", "extra"} {
				if _, ok := mounts[name]; !ok {
					t.Errorf("volume %q is not mounted", name)
				}
			}
			rule := only[*monitoringv1.PrometheusRule](t, objs)
			var alerts []string
			for _, r := range rule.Spec.Groups[0].Rules {
				alerts = append(alerts, r.Alert)
			}
			for _, want := range []string{"ProvisionerDeadLetters", "ProvisionerConsumerLagGrowing", "ProvisionerStalled",
				"ProvisionerErrorRatioHigh", "ProvisionerAirbyteErrors", "ProvisionerNATSDisconnected", "ProvisionerNoReplicasReady", "ProvisionerCustom"} {
				if !slices.Contains(alerts, want) {
					t.Errorf("alert %s missing; have %v", want, alerts)
				}
			}
			checkDashboard(t, configMap(t, objs, releaseName+"-dashboard"))
		},
	},
	{
		name:   "KEDA on the consumer lag",
		args:   []string{"-f", chartDir + "/ci/keda-values.yaml"},
		golden: "keda.yaml",
		kinds:  []string{"ConfigMap", "Deployment", "Pod", "PodDisruptionBudget", "ScaledObject", "Service", "ServiceAccount"},
		check: func(t *testing.T, objs []runtime.Object) {
			so := only[*unstructured.Unstructured](t, objs)
			triggers, _, _ := unstructured.NestedSlice(so.Object, "spec", "triggers")
			if len(triggers) != 1 {
				t.Fatalf("triggers = %d, want 1", len(triggers))
			}
			tr := triggers[0].(map[string]any)
			meta, _, _ := unstructured.NestedStringMap(tr, "metadata")
			want := map[string]string{
				"natsServerMonitoringEndpoint": "nats.nats.svc:8222", "account": "PROVISIONER", "stream": "PROVISIONER_REQUESTS",
				"consumer": "provisioner", "lagThreshold": "50", "activationLagThreshold": "1", "useHttps": "false",
			}
			if tr["type"] != "nats-jetstream" || !mapsEqual(meta, want) {
				t.Errorf("trigger = %v %v, want nats-jetstream %v", tr["type"], meta, want)
			}
			if target, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "name"); target != releaseName {
				t.Errorf("scaleTargetRef = %q, want %q", target, releaseName)
			}
			d := only[*appsv1.Deployment](t, objs)
			if d.Spec.Replicas != nil {
				t.Errorf("replicas = %d with KEDA, want unset", *d.Spec.Replicas)
			}
			if got := d.Spec.Template.Spec.AutomountServiceAccountToken; got == nil || *got {
				t.Errorf("automountServiceAccountToken = %v, want false for Vault AppRole auth", got)
			}
			if cm := configMap(t, objs, releaseName); cm.Data["PROVISIONER_AIRBYTE_CLIENT_SECRET_REF"] != "vault:provisioner/airbyte#client_secret" {
				t.Errorf("client secret ref = %q", cm.Data["PROVISIONER_AIRBYTE_CLIENT_SECRET_REF"])
			}
		},
	},
}

func TestRenderStrict(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, tc.args...)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			objs := decodeStrict(t, out)
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, tc.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, tc.kinds)
			}
			checkDeploymentInvariants(t, only[*appsv1.Deployment](t, objs), configMap(t, objs, releaseName))
			checkDoctorPod(t, only[*appsv1.Deployment](t, objs), only[*corev1.Pod](t, objs), objs)
			tc.check(t, objs)
			if tc.golden != "" {
				compareGolden(t, tc.golden, out)
			}
		})
	}
}

// checkDeploymentInvariants holds for every values set: the security defaults, the probes, the
// config wiring and that no secret value is ever written into a manifest.
func checkDeploymentInvariants(t *testing.T, d *appsv1.Deployment, cm *corev1.ConfigMap) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("runAsNonRoot is not true")
	case sc.RunAsUser == nil || *sc.RunAsUser != 65532:
		t.Errorf("runAsUser = %v, want 65532", sc.RunAsUser)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem is not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
		t.Errorf("capabilities = %v, want drop ALL", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("seccompProfile = %v, want RuntimeDefault", sc.SeccompProfile)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod seccompProfile is not RuntimeDefault")
	}
	if !slices.Equal(c.Args, []string{"run"}) {
		t.Errorf("args = %v, want [run]", c.Args)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9090 {
		t.Errorf("ports = %v, want metrics:9090", c.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("probe for %s = %v, want GET %s on port metrics", name, p, name)
		}
	}
	shutdown, err := time.ParseDuration(cm.Data["PROVISIONER_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("PROVISIONER_SHUTDOWN_TIMEOUT: %v", err)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		t.Errorf("terminationGracePeriodSeconds = %v, want above the shutdown timeout %s", g, shutdown)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("pod template has no checksum/config annotation")
	}
	if len(c.EnvFrom) == 0 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != cm.Name {
		t.Errorf("envFrom = %v, want the ConfigMap %s first", c.EnvFrom, cm.Name)
	}
	if !hasVolume(pod.Volumes, "tmp") {
		t.Error("no /tmp emptyDir")
	}

	// Secrets only ever arrive by reference: never as a literal env value nor in the ConfigMap.
	secretish := regexp.MustCompile(`^PROVISIONER_.*(SECRET|PASSWORD|TOKEN)$`)
	for _, e := range c.Env {
		if secretish.MatchString(e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("env %s is not a secretKeyRef", e.Name)
		}
	}
	for key := range cm.Data {
		if secretish.MatchString(key) {
			t.Errorf("ConfigMap carries %s; secrets must come from a Secret", key)
		}
	}
}

// checkDoctorPod: the helm test pod runs `provisioner doctor` with exactly the worker's configuration
// (environment, Secrets, files, service account) and is selected by none of the worker's objects.
func checkDoctorPod(t *testing.T, d *appsv1.Deployment, p *corev1.Pod, objs []runtime.Object) {
	t.Helper()
	if p.Annotations["helm.sh/hook"] != "test" {
		t.Errorf("doctor pod hook = %q, want test", p.Annotations["helm.sh/hook"])
	}
	worker, doctor := d.Spec.Template.Spec, p.Spec
	if len(doctor.Containers) != 1 || !slices.Equal(doctor.Containers[0].Args, []string{"doctor"}) {
		t.Fatalf("doctor pod containers = %+v, want one running doctor", doctor.Containers)
	}
	wc, dc := worker.Containers[0], doctor.Containers[0]
	for _, same := range []struct {
		what        string
		worker, pod any
	}{
		{"image", wc.Image, dc.Image},
		{"envFrom", wc.EnvFrom, dc.EnvFrom},
		{"env", wc.Env, dc.Env},
		{"volumeMounts", wc.VolumeMounts, dc.VolumeMounts},
		{"volumes", worker.Volumes, doctor.Volumes},
		{"securityContext", wc.SecurityContext, dc.SecurityContext},
		{"serviceAccountName", worker.ServiceAccountName, doctor.ServiceAccountName},
		{"automountServiceAccountToken", worker.AutomountServiceAccountToken, doctor.AutomountServiceAccountToken},
	} {
		if !reflect.DeepEqual(same.worker, same.pod) {
			t.Errorf("doctor pod %s differs from the worker's:\n worker %+v\n doctor %+v", same.what, same.worker, same.pod)
		}
	}
	if doctor.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("doctor pod restartPolicy = %q, want Never", doctor.RestartPolicy)
	}
	selector := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
	if selector.Matches(labels.Set(p.Labels)) {
		t.Errorf("the worker's selector %v matches the doctor pod's labels %v (Service, PDB, NetworkPolicy would count it)", selector, p.Labels)
	}
}

func hasVolume(vols []corev1.Volume, name string) bool {
	return slices.ContainsFunc(vols, func(v corev1.Volume) bool { return v.Name == name })
}

// checkDashboard proves the dashboard is valid JSON and charts every metric the service exports.
func checkDashboard(t *testing.T, cm *corev1.ConfigMap) {
	t.Helper()
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels = %v, want grafana_dashboard=1", cm.Labels)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(cm.Data["provisioner.json"]), &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	var exprs strings.Builder
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced expression %q", p.Title, tg.Expr)
			}
			exprs.WriteString(tg.Expr + "\n")
		}
	}
	for _, metric := range []string{
		"provisioner_requests_received_total", "provisioner_requests_finished_total", "provisioner_request_duration_seconds_bucket",
		"provisioner_requests_in_flight", "provisioner_dead_letters_total", "provisioner_consumer_pending_messages",
		"provisioner_consumer_ack_pending_messages", "provisioner_nats_connected", "provisioner_airbyte_requests_total",
		"provisioner_airbyte_request_duration_seconds_bucket", "provisioner_build_info",
	} {
		if !strings.Contains(exprs.String(), metric) {
			t.Errorf("no dashboard panel queries %s", metric)
		}
	}
}

func only[T runtime.Object](t *testing.T, objs []runtime.Object) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("rendered %d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

func configMap(t *testing.T, objs []runtime.Object, name string) *corev1.ConfigMap {
	t.Helper()
	for _, o := range objs {
		if cm, ok := o.(*corev1.ConfigMap); ok && cm.Name == name {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %s rendered", name)
	return nil
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("rendered manifest differs from %s; review the change and run `go test -update`:\n%s", path, firstDiff(string(want), got))
	}
}

// firstDiff shows the first differing line, enough to locate a change in a long manifest.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, w, g)
		}
	}
	return ""
}
