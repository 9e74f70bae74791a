package sessioncount

import (
	"net"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Target is one pod to read.
type Target struct {
	Pod string
	// Addr is the pod's admin port, host:port.
	Addr string
	// URL of the pod's /metrics on its admin port.
	URL string
}

// Targets are the pods worth reading: ready (the LB sends them clients), not being deleted,
// with an address and a container port named portName (resolved per pod, so a port change
// in the middle of a rollout reads each pod where it listens). In pod name order.
func Targets(pods []corev1.Pod, portName string) []Target {
	var out []Target
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !Ready(p) {
			continue
		}
		port := containerPort(p, portName)
		if port == 0 {
			continue
		}
		addr := net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port)))
		out = append(out, Target{Pod: p.Name, Addr: addr, URL: "http://" + addr + "/metrics"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

// Ready is the pod's Ready condition.
func Ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func containerPort(p *corev1.Pod, name string) int32 {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
				return cp.ContainerPort
			}
		}
	}
	return 0
}
