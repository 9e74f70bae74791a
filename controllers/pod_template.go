package controllers

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// What spec.pod changes in the operator's pod (the rest of it, the service account, pull
// secrets, priority, environment, volumes and containers, StatefulSet adds as it is).

// podTemplate is spec.pod, or an empty one.
func podTemplate(gw *v1alpha1.TCPGateway) *v1alpha1.PodTemplate {
	if gw.Spec.Pod == nil {
		return &v1alpha1.PodTemplate{}
	}
	return gw.Spec.Pod
}

// userMounts are spec.pod.volumeMounts, for the gateway container.
func userMounts(pod *v1alpha1.PodTemplate) []corev1.VolumeMount {
	out := make([]corev1.VolumeMount, 0, len(pod.VolumeMounts))
	for _, m := range pod.VolumeMounts {
		out = append(out, m.Mount())
	}
	return out
}

// assignedIDs: the platform chooses the user and group IDs (spec.pod.userIDs Assigned).
func assignedIDs(pod *v1alpha1.PodTemplate) bool { return pod.UserIDs == v1alpha1.UserIDsAssigned }

// podSecurityContext is the restricted pod security context, without the fixed IDs under
// userIDs Assigned, with spec.pod.securityContext merged over it.
func podSecurityContext(pod *v1alpha1.PodTemplate) *corev1.PodSecurityContext {
	sc := &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if !assignedIDs(pod) {
		sc.RunAsUser = ptr.To[int64](nonRootID)
		sc.RunAsGroup = ptr.To[int64](nonRootID)
		sc.FSGroup = ptr.To[int64](nonRootID)
	}
	overlay(sc, pod.SecurityContext)
	return sc
}

// gatewaySecurityContext is the gateway container's: restricted, without the fixed IDs under
// userIDs Assigned (a container's IDs override the pod's, so they must go from both), with
// spec.pod.containerSecurityContext merged over it.
func gatewaySecurityContext(pod *v1alpha1.PodTemplate) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if !assignedIDs(pod) {
		sc.RunAsUser = ptr.To[int64](nonRootID)
		sc.RunAsGroup = ptr.To[int64](nonRootID)
	}
	overlay(sc, pod.ContainerSecurityContext)
	return sc
}

// configFileMode is the mode of the files in the config volume (keys, passwords). With fixed
// IDs they belong to fsGroup 65532, the gateway's group: 0440 keeps them from any other user.
// Under userIDs Assigned the group is the platform's (OpenShift assigns an fsGroup, other
// platforms may assign none, and the files are then root's): 0444, so that the gateway can
// read them whatever it runs as. Only the gateway container mounts the volume, and it runs a
// single process.
func configFileMode(pod *v1alpha1.PodTemplate) int32 {
	if assignedIDs(pod) {
		return 0o444
	}
	return 0o440
}

// overlay merges over onto base as a JSON merge patch (RFC 7386) of over's encoding would:
// each field over sets replaces base's, nested objects merge field by field, lists replace.
// encoding/json does exactly that when it decodes into an existing value (it reuses non-nil
// pointers and leaves absent fields alone), and over's encoding omits its unset fields.
func overlay[T any](base, over *T) {
	if over == nil {
		return
	}
	b, err := json.Marshal(over)
	if err == nil {
		err = json.Unmarshal(b, base)
	}
	if err != nil {
		// Only API types go in here; they always encode and decode.
		panic("controllers: merging " + err.Error())
	}
}
