package controllers

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/config"
)

func TestStatefulSet(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.TCPGateway)
		check  func(t *testing.T, sts *appsv1.StatefulSet, rc *RenderedConfig)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, sts *appsv1.StatefulSet, rc *RenderedConfig) {
				sel := map[string]string{"app.kubernetes.io/name": "tcpgateway", "app.kubernetes.io/instance": "chat"}
				s := sts.Spec
				eq(t, "name", sts.Namespace+"/"+sts.Name, "prod/chat")
				eq(t, "replicas", *s.Replicas, int32(2))
				eq(t, "serviceName", s.ServiceName, "chat-headless")
				eq(t, "podManagementPolicy", s.PodManagementPolicy, appsv1.ParallelPodManagement)
				eq(t, "updateStrategy", s.UpdateStrategy.Type, appsv1.RollingUpdateStatefulSetStrategyType)
				eq(t, "selector", s.Selector.MatchLabels, sel)
				for k, v := range sel {
					eq(t, "pod label "+k, s.Template.Labels[k], v)
				}
				eq(t, "config-hash", s.Template.Annotations[AnnotationConfigHash], rc.Hash)

				p := s.Template.Spec
				// 45s hard deadline + 10s margin (config.TerminationGraceMargin).
				eq(t, "terminationGracePeriodSeconds", *p.TerminationGracePeriodSeconds, int64(55))
				eq(t, "automountServiceAccountToken", *p.AutomountServiceAccountToken, false)
				eq(t, "pod securityContext", p.SecurityContext, &corev1.PodSecurityContext{
					RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
					FSGroup:        ptr.To[int64](65532),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				})
				eq(t, "topologySpreadConstraints", p.TopologySpreadConstraints, []corev1.TopologySpreadConstraint{{
					MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
					LabelSelector: &metav1.LabelSelector{MatchLabels: sel},
				}})

				if len(p.Containers) != 1 {
					t.Fatalf("%d containers, want 1", len(p.Containers))
				}
				c := p.Containers[0]
				eq(t, "container name", c.Name, "gateway")
				eq(t, "image", c.Image, "ghcr.io/tcpgateway/tcpgateway:v0.1.0")
				eq(t, "command", c.Command, []string{"/usr/local/bin/gateway", "-config", "/etc/tcpgateway/gateway.yaml"})
				eq(t, "ports", c.Ports, []corev1.ContainerPort{
					{Name: "client", ContainerPort: 7000, Protocol: corev1.ProtocolTCP},
					{Name: "admin", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
				})
				eq(t, "env POD_NAME", c.Env[0].ValueFrom.FieldRef.FieldPath, "metadata.name")
				eq(t, "env POD_NAMESPACE", c.Env[1].ValueFrom.FieldRef.FieldPath, "metadata.namespace")
				admin := intstr.FromString("admin")
				eq(t, "readiness", c.ReadinessProbe.HTTPGet, &corev1.HTTPGetAction{Path: "/readyz", Port: admin})
				eq(t, "readiness period", c.ReadinessProbe.PeriodSeconds, int32(2))
				eq(t, "readiness failureThreshold", c.ReadinessProbe.FailureThreshold, int32(1))
				eq(t, "liveness", c.LivenessProbe.HTTPGet, &corev1.HTTPGetAction{Path: "/healthz", Port: admin})
				// The drain starts from inside the pod, over the control socket in its emptyDir.
				eq(t, "preStop", c.Lifecycle.PreStop, &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
					Command: []string{"/usr/local/bin/gateway", "drain", "-socket", "/var/run/tcpgateway/control.sock", "-wait"}}})
				eq(t, "env TCPGW_LISTEN_CONTROL", c.Env[2], corev1.EnvVar{Name: "TCPGW_LISTEN_CONTROL", Value: "/var/run/tcpgateway/control.sock"})
				eq(t, "listen.control", rc.Config.Listen.Control, "/var/run/tcpgateway/control.sock")
				eq(t, "gateway's default control socket", ControlSocket, config.DefaultControlSocket)
				eq(t, "container securityContext", c.SecurityContext, &corev1.SecurityContext{
					RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
					ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				})
				eq(t, "mounts", c.VolumeMounts, []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/tcpgateway", ReadOnly: true},
					{Name: "tmp", MountPath: "/tmp"},
					{Name: "control", MountPath: "/var/run/tcpgateway"},
				})
				eq(t, "config volume sources", p.Volumes[0].Projected.Sources, []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{
						LocalObjectReference: corev1.LocalObjectReference{Name: "chat-config"},
						Items:                []corev1.KeyToPath{{Key: "gateway.yaml", Path: "gateway.yaml"}},
					}},
					{Secret: &corev1.SecretProjection{
						LocalObjectReference: corev1.LocalObjectReference{Name: "chat-jwt"},
						Items:                []corev1.KeyToPath{{Key: "hs256.secret", Path: "keys/hs256.secret"}},
					}},
				})
				eq(t, "tmp volume", p.Volumes[1].EmptyDir != nil, true)
				eq(t, "control volume", p.Volumes[2].EmptyDir, &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory})
				// The gateway reads its key where the volume puts it.
				eq(t, "key file", rc.Config.Auth.JWT.HS256SecretFile, "keys/hs256.secret")
			},
		},
		{
			name:   "grace period follows the hard deadline, rounded up",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Drain.HardDeadline = "100500ms" },
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				eq(t, "terminationGracePeriodSeconds", *sts.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(111))
			},
		},
		{
			name: "ports",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Port, gw.Spec.AdminPort = 443, 8443
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				ports := sts.Spec.Template.Spec.Containers[0].Ports
				eq(t, "client port", ports[0].ContainerPort, int32(443))
				eq(t, "admin port", ports[1].ContainerPort, int32(8443))
			},
		},
		{
			name: "both JWT keys are mounted",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Auth.JWT.RS256PublicKey = "rs.pem"
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				eq(t, "secret items", sts.Spec.Template.Spec.Volumes[0].Projected.Sources[1].Secret.Items, []corev1.KeyToPath{
					{Key: "hs256.secret", Path: "keys/hs256.secret"}, {Key: "rs.pem", Path: "keys/rs.pem"},
				})
			},
		},
		{
			name: "webhook auth mounts no Secret",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Auth = v1alpha1.Auth{Webhook: &v1alpha1.WebhookAuth{URL: "http://auth/verify", Timeout: "2s"}}
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				eq(t, "sources", len(sts.Spec.Template.Spec.Volumes[0].Projected.Sources), 1)
			},
		},
		{
			name: "no spec.resources: derived from the limits the pods run with",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Limits.MaxConnections = 1000
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, rc *RenderedConfig) {
				got := sts.Spec.Template.Spec.Containers[0].Resources
				eq(t, "resources", got, GatewayResources(corev1.ResourceRequirements{}, rc.Config.Limits, rc.Config.Listen.TLS != nil, rc.Config.Listen.WebSocket != nil))
				eq(t, "memory limit", got.Limits.Memory().String(), "446Mi")
			},
		},
		{
			name: "scheduling and resources pass through; the user's spread replaces the default",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
				gw.Spec.NodeSelector = map[string]string{"pool": "edge"}
				gw.Spec.Tolerations = []corev1.Toleration{{Key: "edge", Operator: corev1.TolerationOpExists}}
				gw.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
				gw.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 2, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule}}
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				p := sts.Spec.Template.Spec
				eq(t, "resources", p.Containers[0].Resources.Limits.Memory().String(), "1Gi")
				eq(t, "nodeSelector", p.NodeSelector, map[string]string{"pool": "edge"})
				eq(t, "tolerations", len(p.Tolerations), 1)
				eq(t, "affinity", p.Affinity != nil && p.Affinity.NodeAffinity != nil, true)
				eq(t, "spread", p.TopologySpreadConstraints, []corev1.TopologySpreadConstraint{{MaxSkew: 2, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule}})
			},
		},
		{
			name: "pod annotations merge; the config hash is the operator's",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.PodAnnotations = map[string]string{"prometheus.io/scrape": "true", AnnotationConfigHash: "mine"}
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, rc *RenderedConfig) {
				a := sts.Spec.Template.Annotations
				eq(t, "user annotation", a["prometheus.io/scrape"], "true")
				eq(t, "config-hash", a[AnnotationConfigHash], rc.Hash)
			},
		},
		{
			name: "spec.pod reaches the pod; the operator's entries stay first and win",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.PodLabels = map[string]string{"team": "edge", LabelInstance: "other"}
				gw.Spec.Pod = &v1alpha1.PodTemplate{
					ServiceAccountName: "gw-sa",
					ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "regcred"}},
					PriorityClassName:  "gateway-critical",
					Env: []corev1.EnvVar{
						{Name: "HTTPS_PROXY", Value: "http://proxy:3128"},
						{Name: "OTEL_RESOURCE_ATTRIBUTES", Value: "k8s.pod.name=$(POD_NAME)"},
					},
					EnvFrom:        []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "proxy-env"}}}},
					Volumes:        []corev1.Volume{{Name: "ca-certs", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "corp-ca"}}}}},
					VolumeMounts:   []v1alpha1.VolumeMount{{Name: "ca-certs", MountPath: "/etc/ssl/certs", ReadOnly: true}},
					Containers:     []corev1.Container{{Name: "log-shipper", Image: "fluent-bit:3"}},
					InitContainers: []corev1.Container{{Name: "wait-for-proxy", Image: "busybox:1"}},
				}
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				p := sts.Spec.Template.Spec
				eq(t, "pod label team", sts.Spec.Template.Labels["team"], "edge")
				eq(t, "selector label is the operator's", sts.Spec.Template.Labels[LabelInstance], "chat")
				eq(t, "StatefulSet labels", sts.Labels[LabelInstance], "chat")
				eq(t, "StatefulSet has no pod label", sts.Labels["team"], "")
				eq(t, "serviceAccountName", p.ServiceAccountName, "gw-sa")
				eq(t, "imagePullSecrets", p.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}})
				eq(t, "priorityClassName", p.PriorityClassName, "gateway-critical")
				eq(t, "still no token", *p.AutomountServiceAccountToken, false)
				names := func(cs []corev1.Container) (out []string) {
					for _, c := range cs {
						out = append(out, c.Name)
					}
					return out
				}
				eq(t, "containers", names(p.Containers), []string{"gateway", "log-shipper"})
				eq(t, "initContainers", names(p.InitContainers), []string{"wait-for-proxy"})
				c := p.Containers[0]
				var env []string
				for _, e := range c.Env {
					env = append(env, e.Name)
				}
				eq(t, "env", env, []string{"POD_NAME", "POD_NAMESPACE", "TCPGW_LISTEN_CONTROL", "HTTPS_PROXY", "OTEL_RESOURCE_ATTRIBUTES"})
				eq(t, "envFrom", c.EnvFrom[0].ConfigMapRef.Name, "proxy-env")
				eq(t, "mounts", c.VolumeMounts[3:], []corev1.VolumeMount{{Name: "ca-certs", MountPath: "/etc/ssl/certs", ReadOnly: true}})
				eq(t, "operator's mounts first", c.VolumeMounts[0].MountPath, ConfigDir)
				var vols []string
				for _, v := range p.Volumes {
					vols = append(vols, v.Name)
				}
				eq(t, "volumes", vols, []string{"config", "tmp", "control", "ca-certs"})
			},
		},
		{
			name: "security contexts merge over the operator's field by field",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Pod = &v1alpha1.PodTemplate{
					SecurityContext: &corev1.PodSecurityContext{
						FSGroup:            ptr.To[int64](2000),
						SupplementalGroups: []int64{3000},
						SeccompProfile:     &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("gw.json")},
					},
					ContainerSecurityContext: &corev1.SecurityContext{
						Capabilities:           &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}},
						ReadOnlyRootFilesystem: ptr.To(false),
					},
				}
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				p := sts.Spec.Template.Spec
				eq(t, "pod securityContext", p.SecurityContext, &corev1.PodSecurityContext{
					RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
					FSGroup: ptr.To[int64](2000), SupplementalGroups: []int64{3000},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("gw.json")},
				})
				eq(t, "container securityContext", p.Containers[0].SecurityContext, &corev1.SecurityContext{
					RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
					ReadOnlyRootFilesystem: ptr.To(false), AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				})
				eq(t, "config files", *p.Volumes[0].Projected.DefaultMode, int32(0o440))
			},
		},
		{
			name: "userIDs Assigned (OpenShift restricted-v2): no fixed IDs, every other restriction kept",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Pod = &v1alpha1.PodTemplate{UserIDs: v1alpha1.UserIDsAssigned}
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				p := sts.Spec.Template.Spec
				eq(t, "pod securityContext", p.SecurityContext, &corev1.PodSecurityContext{
					RunAsNonRoot:   ptr.To(true),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				})
				eq(t, "container securityContext", p.Containers[0].SecurityContext, &corev1.SecurityContext{
					RunAsNonRoot: ptr.To(true), ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				})
				// The files' group is the platform's, or root's: readable whatever the user.
				eq(t, "config files", *p.Volumes[0].Projected.DefaultMode, int32(0o444))
			},
		},
		{
			name: "userIDs Fixed is the default",
			mutate: func(gw *v1alpha1.TCPGateway) {
				gw.Spec.Pod = &v1alpha1.PodTemplate{UserIDs: v1alpha1.UserIDsFixed}
			},
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				want := StatefulSet(newGateway(), mustRender(t, newGateway())).Spec.Template.Spec
				eq(t, "pod securityContext", sts.Spec.Template.Spec.SecurityContext, want.SecurityContext)
				eq(t, "container securityContext", sts.Spec.Template.Spec.Containers[0].SecurityContext, want.Containers[0].SecurityContext)
			},
		},
		{
			name:   "scaled to zero",
			mutate: func(gw *v1alpha1.TCPGateway) { gw.Spec.Replicas = ptr.To[int32](0) },
			check: func(t *testing.T, sts *appsv1.StatefulSet, _ *RenderedConfig) {
				eq(t, "replicas", *sts.Spec.Replicas, int32(0))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newGateway()
			if tt.mutate != nil {
				tt.mutate(gw)
			}
			rc := mustRender(t, gw)
			sts := StatefulSet(gw, rc)
			tt.check(t, sts, rc)
			if sts.Annotations[AnnotationSpecHash] != specHash(sts.Labels, nil, sts.Spec) {
				t.Error("spec-hash annotation does not match the spec")
			}
		})
	}
}

// The spec hash changes with anything that changes the pods, and only then.
func TestStatefulSetSpecHash(t *testing.T) {
	hash := func(m func(*v1alpha1.TCPGateway)) string {
		gw := newGateway(m)
		return StatefulSet(gw, mustRender(t, gw)).Annotations[AnnotationSpecHash]
	}
	base := hash(func(*v1alpha1.TCPGateway) {})
	if again := hash(func(*v1alpha1.TCPGateway) {}); again != base {
		t.Errorf("hash not stable: %s, %s", base, again)
	}
	for name, m := range map[string]func(*v1alpha1.TCPGateway){
		"image":    func(gw *v1alpha1.TCPGateway) { gw.Spec.Image = "x:2" },
		"replicas": func(gw *v1alpha1.TCPGateway) { gw.Spec.Replicas = ptr.To[int32](3) },
		"route":    func(gw *v1alpha1.TCPGateway) { gw.Spec.Routes[0].Timeout = "1s" },
		"drain":    func(gw *v1alpha1.TCPGateway) { gw.Spec.Drain.HardDeadline = "60s" },
		"pod":      func(gw *v1alpha1.TCPGateway) { gw.Spec.Pod = &v1alpha1.PodTemplate{PriorityClassName: "high"} },
		"labels":   func(gw *v1alpha1.TCPGateway) { gw.Spec.PodLabels = map[string]string{"team": "edge"} },
	} {
		if hash(m) == base {
			t.Errorf("changing %s left the StatefulSet spec hash unchanged", name)
		}
	}
	if hash(func(gw *v1alpha1.TCPGateway) { gw.Spec.Kafka.Partitions = 50 }) != base {
		t.Error("a Kafka partition change (not seen by the pods) changed the StatefulSet")
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}
