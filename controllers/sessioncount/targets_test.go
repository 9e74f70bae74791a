package sessioncount

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pod(name, ip string, ready bool, port int32) corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.PodStatus{PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
	if port != 0 {
		p.Spec.Containers = []corev1.Container{{Name: "gateway", Ports: []corev1.ContainerPort{
			{Name: "client", ContainerPort: 7000}, {Name: "admin", ContainerPort: port}}}}
	}
	return p
}

func TestTargets(t *testing.T) {
	deleting := pod("chat-4", "10.0.0.5", true, 9090)
	deleting.DeletionTimestamp = &metav1.Time{}
	got := Targets([]corev1.Pod{
		pod("chat-1", "10.0.0.2", true, 9191), // another port mid-rollout: read where it listens
		pod("chat-0", "10.0.0.1", true, 9090),
		pod("chat-2", "10.0.0.3", false, 9090), // not ready: the LB sends it nobody
		pod("chat-3", "", true, 9090),          // no address yet
		deleting,
		pod("chat-5", "10.0.0.6", true, 0), // no admin port
		pod("chat-6", "fd00::7", true, 9090),
	}, "admin")
	want := []Target{
		{Pod: "chat-0", Addr: "10.0.0.1:9090", URL: "http://10.0.0.1:9090/metrics"},
		{Pod: "chat-1", Addr: "10.0.0.2:9191", URL: "http://10.0.0.2:9191/metrics"},
		{Pod: "chat-6", Addr: "[fd00::7]:9090", URL: "http://[fd00::7]:9090/metrics"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Targets = %+v, want %+v", got, want)
	}
}
