package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestSpecMatches(t *testing.T) {
	desired := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "gateway", Image: "gw:v1",
			Ports:     []corev1.ContainerPort{{Name: "client", ContainerPort: 7000}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resourceQuantity("500m")}},
		}},
		AutomountServiceAccountToken: ptr.To(false),
		NodeSelector:                 map[string]string{"pool": "edge"},
	}
	// What the API server stores: desired plus defaults.
	defaulted := func() corev1.PodSpec {
		s := *desired.DeepCopy()
		s.RestartPolicy, s.DNSPolicy, s.SchedulerName = corev1.RestartPolicyAlways, corev1.DNSClusterFirst, "default-scheduler"
		s.TerminationGracePeriodSeconds = ptr.To[int64](30)
		c := &s.Containers[0]
		c.ImagePullPolicy, c.TerminationMessagePath = corev1.PullIfNotPresent, "/dev/termination-log"
		c.Ports[0].Protocol = corev1.ProtocolTCP
		c.Resources.Requests[corev1.ResourceCPU] = resourceQuantity("0.5") // same quantity, other spelling
		return s
	}
	tests := []struct {
		name string
		edit func(*corev1.PodSpec)
		want bool
	}{
		{"defaults only", func(*corev1.PodSpec) {}, true},
		{"image changed", func(s *corev1.PodSpec) { s.Containers[0].Image = "gw:evil" }, false},
		{"container added", func(s *corev1.PodSpec) { s.Containers = append(s.Containers, corev1.Container{Name: "x"}) }, false},
		{"port added", func(s *corev1.PodSpec) {
			s.Containers[0].Ports = append(s.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 22})
		}, false},
		{"map key added", func(s *corev1.PodSpec) { s.NodeSelector["other"] = "x" }, false},
		{"map value changed", func(s *corev1.PodSpec) { s.NodeSelector["pool"] = "x" }, false},
		{"pointer to false set to true", func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = ptr.To(true) }, false},
		{"pointer removed", func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = nil }, false},
		{"quantity changed", func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Requests[corev1.ResourceCPU] = resourceQuantity("1")
		}, false},
		{"a field desired leaves unset", func(s *corev1.PodSpec) { s.Hostname = "h" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := defaulted()
			tt.edit(&live)
			if got := specMatches(desired, live); got != tt.want {
				t.Errorf("specMatches = %v, want %v", got, tt.want)
			}
		})
	}
}

// A pointer to a zero value is a value: replicas 0 and maxUnavailable 0 are compared.
func TestSpecMatchesExplicitZero(t *testing.T) {
	zero := appsv1.StatefulSetSpec{Replicas: ptr.To[int32](0)}
	if specMatches(zero, appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3)}) {
		t.Error("replicas 0 matched replicas 3")
	}
	none := intstr.FromInt32(0)
	type budget struct{ MaxUnavailable *intstr.IntOrString }
	if specMatches(budget{&none}, budget{ptr.To(intstr.FromInt32(2))}) {
		t.Error("maxUnavailable 0 matched 2")
	}
	if !specMatches(budget{&none}, budget{ptr.To(intstr.FromInt32(0))}) {
		t.Error("maxUnavailable 0 did not match 0")
	}
}

func TestStatefulSetRestartAnnotation(t *testing.T) {
	desired := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)}}
	desired.Spec.Template.Annotations = map[string]string{"tcpgateway.io/config-hash": "h1"}
	live := desired.DeepCopy()
	live.Spec.Template.Annotations[annotationRestartedAt] = "2026-01-01T00:00:00Z"
	if !statefulSetInSync(desired, live) {
		t.Error("kubectl rollout restart's annotation counted as drift")
	}
	live.Spec.Template.Annotations["other"] = "x"
	if statefulSetInSync(desired, live) {
		t.Error("another template annotation did not count as drift")
	}

	dst := live.DeepCopy()
	desired.Spec.Replicas = ptr.To[int32](5)
	copyStatefulSet(dst, desired)
	eq(t, "template annotations", dst.Spec.Template.Annotations,
		map[string]string{"tcpgateway.io/config-hash": "h1", annotationRestartedAt: "2026-01-01T00:00:00Z"})
	eq(t, "replicas", *dst.Spec.Replicas, int32(5))
	if _, leaked := desired.Spec.Template.Annotations[annotationRestartedAt]; leaked {
		t.Error("copyStatefulSet changed the desired object")
	}
}
