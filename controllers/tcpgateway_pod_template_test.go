package controllers

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/test/repo"
)

// customPod is a spec.pod using every field, as the sample and docs/operator.md show it.
func customPod() *v1alpha1.PodTemplate {
	return &v1alpha1.PodTemplate{
		ServiceAccountName: "chat-gateway",
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "regcred"}},
		PriorityClassName:  "gateway-critical",
		Env:                []corev1.EnvVar{{Name: "HTTPS_PROXY", Value: "http://proxy.infra:3128"}, {Name: "GOMEMLIMIT", Value: "1500MiB"}},
		EnvFrom:            []corev1.EnvFromSource{{Prefix: "APP_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "chat-env"}}}},
		Volumes: []corev1.Volume{
			{Name: "corp-ca", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "corp-ca"}}}},
			{Name: "shipper-buffer", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
		VolumeMounts: []v1alpha1.VolumeMount{{Name: "corp-ca", MountPath: "/etc/ssl/certs", ReadOnly: true}},
		Containers: []corev1.Container{{
			Name: "log-shipper", Image: "fluent/fluent-bit:3.2",
			VolumeMounts: []corev1.VolumeMount{{Name: "shipper-buffer", MountPath: "/buffer"}},
		}},
		InitContainers:  []corev1.Container{{Name: "wait-for-proxy", Image: "busybox:1.37", Command: []string{"nc", "-z", "proxy.infra", "3128"}}},
		SecurityContext: &corev1.PodSecurityContext{SupplementalGroups: []int64{5000}},
		ContainerSecurityContext: &corev1.SecurityContext{
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}},
		},
	}
}

// The schema refuses every spec.pod, podLabels and podDisruptionBudget value that would
// collide with what the operator puts in the pod. The collisions are derived from the
// StatefulSet the builder renders, so an operator volume, mount, variable or label added later
// is checked here without a new case.
func (e *env) testPodTemplateValidation(t *testing.T) {
	ns := e.namespace(t)
	base := newGateway()
	sts := StatefulSet(base, mustRender(t, base))
	gwc := sts.Spec.Template.Spec.Containers[0]

	type attack struct {
		name   string
		mutate func(*v1alpha1.TCPGateway)
		want   string
	}
	var attacks []attack
	pod := func(gw *v1alpha1.TCPGateway) *v1alpha1.PodTemplate {
		if gw.Spec.Pod == nil {
			gw.Spec.Pod = &v1alpha1.PodTemplate{}
		}
		return gw.Spec.Pod
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		attacks = append(attacks, attack{name: "volume named " + v.Name, mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).Volumes = []corev1.Volume{{Name: v.Name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, want: "volumes must not be named config, tmp or control"})
		attacks = append(attacks, attack{name: "mount of the operator's volume " + v.Name, mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).VolumeMounts = []v1alpha1.VolumeMount{{Name: v.Name, MountPath: "/data"}}
		}, want: "every volumeMounts[].name must name one of pod.volumes"})
	}
	userVolume := []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	for _, m := range gwc.VolumeMounts {
		for _, p := range []string{m.MountPath, m.MountPath + "/x", path.Dir(m.MountPath)} {
			want := "must not be at, under or above the operator's mounts"
			if p == "/" {
				want = "must be an absolute path without a trailing slash"
			}
			attacks = append(attacks, attack{name: "mount at " + p + " (operator's " + m.MountPath + ")", mutate: func(gw *v1alpha1.TCPGateway) {
				pod(gw).Volumes = userVolume
				pod(gw).VolumeMounts = []v1alpha1.VolumeMount{{Name: "data", MountPath: p}}
			}, want: want})
		}
	}
	for _, p := range []string{"/etc/tcpgateway/", "/data/../etc/tcpgateway", "/etc/./tcpgateway", "//etc/tcpgateway", "data"} {
		attacks = append(attacks, attack{name: "mount path " + p, mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).Volumes = userVolume
			pod(gw).VolumeMounts = []v1alpha1.VolumeMount{{Name: "data", MountPath: p}}
		}, want: "must be an absolute path without a trailing slash"})
	}
	attacks = append(attacks, attack{name: "mount of an unknown volume", mutate: func(gw *v1alpha1.TCPGateway) {
		pod(gw).VolumeMounts = []v1alpha1.VolumeMount{{Name: "nowhere", MountPath: "/data"}}
	}, want: "every volumeMounts[].name must name one of pod.volumes"})
	for _, ev := range append(gwc.Env, corev1.EnvVar{Name: "TCPGW_LISTEN_ADMIN"}, corev1.EnvVar{Name: "TCPGW_KAFKA_BROKERS"}) {
		attacks = append(attacks, attack{name: "env " + ev.Name, mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).Env = []corev1.EnvVar{{Name: ev.Name, Value: "x"}}
		}, want: "env must not set POD_NAME, POD_NAMESPACE or TCPGW_*"})
	}
	for _, prefix := range []string{"TCPGW_", "TCPGW", "T", "TCPGW_LISTEN_"} {
		attacks = append(attacks, attack{name: "envFrom prefix " + prefix, mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).EnvFrom = []corev1.EnvFromSource{{Prefix: prefix, SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}
		}, want: "envFrom[].prefix must not form TCPGW_* names"})
	}
	attacks = append(attacks,
		attack{name: "sidecar named gateway", mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).Containers = []corev1.Container{{Name: gwc.Name, Image: "x"}}
		}, want: "containers must not be named gateway"},
		attack{name: "init container named gateway", mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).InitContainers = []corev1.Container{{Name: gwc.Name, Image: "x"}}
		}, want: "initContainers must not be named gateway"},
		attack{name: "userIDs Assigned with runAsUser", mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).UserIDs = v1alpha1.UserIDsAssigned
			pod(gw).SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}
		}, want: "userIDs Assigned leaves the user and group IDs to the platform"},
		attack{name: "userIDs Assigned with fsGroup", mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).UserIDs = v1alpha1.UserIDsAssigned
			pod(gw).SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](1000)}
		}, want: "userIDs Assigned leaves the user and group IDs to the platform"},
		attack{name: "userIDs Assigned with a container runAsGroup", mutate: func(gw *v1alpha1.TCPGateway) {
			pod(gw).UserIDs = v1alpha1.UserIDsAssigned
			pod(gw).ContainerSecurityContext = &corev1.SecurityContext{RunAsGroup: ptr.To[int64](1000)}
		}, want: "userIDs Assigned leaves the user and group IDs to the platform"},
		attack{name: "userIDs unknown", mutate: func(gw *v1alpha1.TCPGateway) { pod(gw).UserIDs = "Random" },
			want: `spec.pod.userIDs: Unsupported value: "Random"`},
		attack{name: "PDB with both budgets", mutate: func(gw *v1alpha1.TCPGateway) {
			gw.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)), MinAvailable: ptr.To(intstr.FromInt32(1))}
		}, want: "set maxUnavailable or minAvailable, not both"},
		attack{name: "PDB percentage above 100", mutate: func(gw *v1alpha1.TCPGateway) {
			gw.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("150%"))}
		}, want: "must be a number ≥ 0 or a percentage from 0% to 100%"},
		attack{name: "PDB not a number", mutate: func(gw *v1alpha1.TCPGateway) {
			gw.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromString("half"))}
		}, want: "must be a number ≥ 0 or a percentage from 0% to 100%"},
		attack{name: "PDB negative", mutate: func(gw *v1alpha1.TCPGateway) {
			gw.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(-1))}
		}, want: "must be a number ≥ 0 or a percentage from 0% to 100%"},
		attack{name: "too many sidecars", mutate: func(gw *v1alpha1.TCPGateway) {
			for i := range 9 {
				pod(gw).Containers = append(pod(gw).Containers, corev1.Container{Name: "s" + string(rune('a'+i)), Image: "x"})
			}
		}, want: "spec.pod.containers: Too many: 9: must have at most 8 items"},
	)
	for k := range objectLabels(base) {
		attacks = append(attacks, attack{name: "pod label " + k, mutate: func(gw *v1alpha1.TCPGateway) {
			gw.Spec.PodLabels = map[string]string{k: "other"}
		}, want: "podLabels must not set app.kubernetes.io/name, instance, component or managed-by"})
	}

	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			gw := e.gateway(ns)
			a.mutate(gw)
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(gw)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: obj}
			u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("TCPGateway"))
			err = e.c.Create(e.ctx(t), u)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create = %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), a.want) {
				t.Errorf("error %q\ndoes not contain %q", err, a.want)
			}
		})
	}

	// What the attacks stop short of is accepted: mounts beside the operator's, a prefix
	// that cannot form TCPGW_*, the user's own IDs with userIDs Fixed, 8 sidecars.
	ok := e.gateway(ns)
	ok.Spec.Pod = customPod()
	ok.Spec.Pod.Volumes = append(ok.Spec.Pod.Volumes, userVolume...)
	ok.Spec.Pod.VolumeMounts = append(ok.Spec.Pod.VolumeMounts,
		v1alpha1.VolumeMount{Name: "data", MountPath: "/etc/tcpgateway-extra"},
		v1alpha1.VolumeMount{Name: "data", MountPath: "/var/run/other"},
		v1alpha1.VolumeMount{Name: "data", MountPath: "/tmpfiles"})
	ok.Spec.Pod.EnvFrom = append(ok.Spec.Pod.EnvFrom, corev1.EnvFromSource{Prefix: "TCP_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}})
	ok.Spec.Pod.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), FSGroup: ptr.To[int64](1000)}
	for i := len(ok.Spec.Pod.Containers); i < 8; i++ {
		ok.Spec.Pod.Containers = append(ok.Spec.Pod.Containers, corev1.Container{Name: "s" + string(rune('a'+i)), Image: "x"})
	}
	ok.Spec.PodLabels = map[string]string{"team": "chat", "app.kubernetes.io/part-of": "chat"}
	ok.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromString("50%"))}
	if err := e.c.Create(e.ctx(t), ok, client.DryRunAll); err != nil {
		t.Fatalf("valid object refused: %v", err)
	}
}

// spec.pod, podLabels and podDisruptionBudget reach the StatefulSet's pod template and the
// PodDisruptionBudget through the real API server, which validates the pod template as it
// would for any StatefulSet; changes and removals follow.
func (e *env) testPodTemplate(t *testing.T) {
	ns := e.namespace(t)
	e.startManager(t, ns)
	gw := e.gateway(ns)
	gw.Spec.Pod = customPod()
	gw.Spec.PodLabels = map[string]string{"team": "chat"}
	gw.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromString("50%"))}
	e.create(t, gw)
	key := client.ObjectKeyFromObject(gw)
	e.waitGateway(t, key, settled)

	sts, pdb := &appsv1.StatefulSet{}, &policyv1.PodDisruptionBudget{}
	e.getOwned(t, ns, "chat", sts)
	e.getOwned(t, ns, "chat", pdb)
	p := sts.Spec.Template.Spec
	eq(t, "pod label", sts.Spec.Template.Labels["team"], "chat")
	eq(t, "serviceAccountName", p.ServiceAccountName, "chat-gateway")
	eq(t, "imagePullSecrets", p.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}})
	eq(t, "priorityClassName", p.PriorityClassName, "gateway-critical")
	if len(p.Containers) != 2 || p.Containers[0].Name != "gateway" || p.Containers[1].Name != "log-shipper" || p.Containers[1].Image != "fluent/fluent-bit:3.2" {
		t.Fatalf("containers %+v", p.Containers)
	}
	eq(t, "initContainers", len(p.InitContainers) == 1 && p.InitContainers[0].Name == "wait-for-proxy", true)
	c := p.Containers[0]
	eq(t, "env", c.Env[len(c.Env)-2:], []corev1.EnvVar{{Name: "HTTPS_PROXY", Value: "http://proxy.infra:3128"}, {Name: "GOMEMLIMIT", Value: "1500MiB"}})
	eq(t, "envFrom", c.EnvFrom, customPod().EnvFrom)
	eq(t, "gateway mounts", c.VolumeMounts[len(c.VolumeMounts)-1], corev1.VolumeMount{Name: "corp-ca", MountPath: "/etc/ssl/certs", ReadOnly: true})
	var vols []string
	for _, v := range p.Volumes {
		vols = append(vols, v.Name)
	}
	eq(t, "volumes", vols, []string{"config", "tmp", "control", "corp-ca", "shipper-buffer"})
	eq(t, "pod supplementalGroups", p.SecurityContext.SupplementalGroups, []int64{5000})
	eq(t, "pod runAsUser kept", *p.SecurityContext.RunAsUser, int64(65532))
	eq(t, "capabilities", c.SecurityContext.Capabilities, &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}})
	eq(t, "pdb minAvailable", pdb.Spec.MinAvailable, ptr.To(intstr.FromString("50%")))
	eq(t, "pdb maxUnavailable", pdb.Spec.MaxUnavailable, (*intstr.IntOrString)(nil))

	// What the schema cannot afford to check (here: a sidecar and an init container of one
	// name, which the pod template's own validation refuses) stops at the StatefulSet: the
	// API server refuses the update, the TCPGateway says so, and the pods keep their template.
	hash := sts.Annotations[AnnotationSpecHash]
	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Pod.Containers = append(gw.Spec.Pod.Containers, corev1.Container{Name: "wait-for-proxy", Image: "busybox:1.37"})
	})
	e.waitGateway(t, key, func(gw *v1alpha1.TCPGateway) error {
		c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionDegraded)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonReconcileError || c.ObservedGeneration != gw.Generation {
			return fmt.Errorf("Degraded = %+v, want True/ReconcileError for generation %d", c, gw.Generation)
		}
		if !strings.Contains(c.Message, `while updating StatefulSet chat`) || !strings.Contains(c.Message, `Duplicate value: "wait-for-proxy"`) {
			return fmt.Errorf("Degraded message %q does not name the refused StatefulSet and the duplicate", c.Message)
		}
		return nil
	})
	e.getOwned(t, ns, "chat", sts)
	eq(t, "StatefulSet spec-hash after the refused update", sts.Annotations[AnnotationSpecHash], hash)

	// OpenShift: the IDs go, from the pod and the container; removing spec.pod's sidecar and
	// the budget removes them from the pods and the PodDisruptionBudget.
	e.update(t, key, func(gw *v1alpha1.TCPGateway) {
		gw.Spec.Pod.UserIDs = v1alpha1.UserIDsAssigned
		gw.Spec.Pod.Containers = nil
		gw.Spec.PodDisruptionBudget = nil
	})
	e.waitGateway(t, key, settled)
	e.getOwned(t, ns, "chat", sts)
	e.getOwned(t, ns, "chat", pdb)
	p = sts.Spec.Template.Spec
	eq(t, "containers", len(p.Containers), 1)
	sc, csc := p.SecurityContext, p.Containers[0].SecurityContext
	if sc.RunAsUser != nil || sc.RunAsGroup != nil || sc.FSGroup != nil || csc.RunAsUser != nil || csc.RunAsGroup != nil {
		t.Errorf("fixed IDs under userIDs Assigned: pod %+v, container %+v", sc, csc)
	}
	if !*sc.RunAsNonRoot || !*csc.RunAsNonRoot || *csc.AllowPrivilegeEscalation || csc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("a restriction went with the IDs: pod %+v, container %+v", sc, csc)
	}
	eq(t, "config files", *p.Volumes[0].Projected.DefaultMode, int32(0o444))
	eq(t, "pdb maxUnavailable", pdb.Spec.MaxUnavailable, ptr.To(intstr.FromInt32(1)))
	eq(t, "pdb minAvailable", pdb.Spec.MinAvailable, (*intstr.IntOrString)(nil))
}

// Every sample in config/samples is listed by its kustomization, is accepted by the API server,
// and renders a StatefulSet the API server accepts too (dry runs: the samples name Secrets,
// ServiceAccounts and registries that do not exist here).
func (e *env) testSamples(t *testing.T) {
	ns := e.namespace(t)
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "config", "samples")
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &kustomization); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if name == "kustomization.yaml" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if !slices.Contains(kustomization.Resources, name) {
				t.Errorf("config/samples/kustomization.yaml does not list %s", name)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			gw := &v1alpha1.TCPGateway{}
			if err := yaml.UnmarshalStrict(data, gw); err != nil {
				t.Fatalf("not one TCPGateway: %v", err)
			}
			gw.Namespace = ns
			if err := e.c.Create(e.ctx(t), gw, client.DryRunAll); err != nil {
				t.Fatalf("the API server refuses the sample: %v", err)
			}
			// gw now holds what the API server would store, defaults included.
			rc, err := RenderConfig(gw)
			if err != nil {
				t.Fatalf("RenderConfig: %v", err)
			}
			if err := e.c.Create(e.ctx(t), StatefulSet(gw, rc), client.DryRunAll); err != nil {
				t.Errorf("the API server refuses the sample's StatefulSet: %v", err)
			}
			if err := e.c.Create(e.ctx(t), PodDisruptionBudget(gw), client.DryRunAll); err != nil {
				t.Errorf("the API server refuses the sample's PodDisruptionBudget: %v", err)
			}
		})
	}
}

// A TCPGateway with spec.pod settles: the API server fills defaults into everything spec.pod
// brings (probes, resources, volume modes, field paths' API versions, ...), and the drift
// check must take none of them for an edit, or every reconcile would patch the StatefulSet.
func (e *env) testPodTemplateIdempotent(t *testing.T) {
	ns := e.namespace(t)
	gw := e.gateway(ns)
	gw.Spec.Pod = customPod()
	gw.Spec.Pod.Env = append(gw.Spec.Pod.Env, corev1.EnvVar{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}})
	gw.Spec.Pod.Volumes = append(gw.Spec.Pod.Volumes,
		corev1.Volume{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault"},
		}}}}},
		corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", Items: []corev1.KeyToPath{{Key: "k", Path: "k"}}}}})
	sidecar := &gw.Spec.Pod.Containers[0]
	sidecar.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resourceQuantity("0.1"), corev1.ResourceMemory: resourceQuantity("64Mi")}}
	sidecar.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 2020}}
	sidecar.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}}
	sidecar.VolumeMounts = append(sidecar.VolumeMounts, corev1.VolumeMount{Name: "token", MountPath: "/var/run/secrets/vault"})
	gw.Spec.Pod.InitContainers[0].RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	gw.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("25%"))}
	e.create(t, gw)

	var writes writeCounter
	live, err := client.NewWithWatch(e.cfg, client.Options{Scheme: e.scheme})
	if err != nil {
		t.Fatal(err)
	}
	r := e.reconciler(writes.wrap(live), events.NewFakeRecorder(100))
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(gw)}
	for i, want := range []int64{-1, 0, 0} {
		writes.n.Store(0)
		if res, err := r.Reconcile(e.ctx(t), req); err != nil || res != (ctrl.Result{}) {
			t.Fatalf("reconcile %d = %+v, %v", i+1, res, err)
		}
		if n := writes.n.Load(); want >= 0 && n != want {
			t.Errorf("reconcile %d made %d writes, want %d", i+1, n, want)
		}
	}
	sts := &appsv1.StatefulSet{}
	e.getOwned(t, ns, "chat", sts)
	eq(t, "sidecar probe", sts.Spec.Template.Spec.Containers[1].ReadinessProbe.HTTPGet.Port, intstr.FromString("http"))
}
