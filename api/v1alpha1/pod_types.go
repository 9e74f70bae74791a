package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// PodTemplate customises the gateway pods beyond what the operator sets. Everything here is
// added to the operator's pod: the operator's own container, volumes, mounts, environment and
// labels cannot be replaced, and the schema refuses what would collide with them.
//
// The rule below keeps userIDs Assigned honest: an ID set anyway would be refused by the
// policy that assigns them (OpenShift's restricted-v2 SCC), or silently win over it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.userIDs) || self.userIDs != 'Assigned' || ((!has(self.securityContext) || (!has(self.securityContext.runAsUser) && !has(self.securityContext.runAsGroup) && !has(self.securityContext.fsGroup))) && (!has(self.containerSecurityContext) || (!has(self.containerSecurityContext.runAsUser) && !has(self.containerSecurityContext.runAsGroup))))",message="userIDs Assigned leaves the user and group IDs to the platform: do not set runAsUser, runAsGroup or fsGroup in securityContext or containerSecurityContext"
// +kubebuilder:validation:XValidation:rule="!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))",message="every volumeMounts[].name must name one of pod.volumes (the operator's volumes config, tmp and control are not for mounting again)"
type PodTemplate struct {
	// ServiceAccountName the pods run as. Unset: the namespace's default. The gateway itself
	// never calls the Kubernetes API, and the pods mount no service account token
	// (automountServiceAccountToken false); a sidecar that needs one can mount a projected
	// serviceAccountToken volume from pod.volumes.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// ImagePullSecrets for pulling the gateway image (and the sidecars') from a private
	// registry: Secrets of type kubernetes.io/dockerconfigjson in the TCPGateway's namespace.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// PriorityClassName of the pods, e.g. one that lets gateways preempt batch work.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// Env adds environment variables to the gateway container (HTTPS_PROXY, GOMEMLIMIT, ...).
	// POD_NAME, POD_NAMESPACE and TCPGW_* are refused: the operator sets POD_NAME (the
	// gateway's serverID and Kafka identity) and POD_NAMESPACE, and the gateway reads TCPGW_*
	// as overrides of the configuration the operator renders.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(e, !(e.name in ['POD_NAME', 'POD_NAMESPACE']) && !e.name.startsWith('TCPGW_'))",message="env must not set POD_NAME, POD_NAMESPACE or TCPGW_*: the operator sets POD_NAME and POD_NAMESPACE, and the gateway reads TCPGW_* as overrides of the configuration the operator renders"
	// +listType=map
	// +listMapKey=name
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// EnvFrom adds the keys of ConfigMaps and Secrets as environment variables of the gateway
	// container. A prefix that could form TCPGW_* is refused. The operator cannot see the
	// keys: a source without a prefix must not hold TCPGW_* keys (they would override the
	// rendered configuration); POD_NAME and POD_NAMESPACE from a source lose to the
	// operator's.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(s, !has(s.prefix) || (!s.prefix.startsWith('TCPGW_') && !'TCPGW_'.startsWith(s.prefix)))",message="envFrom[].prefix must not form TCPGW_* names: the gateway reads them as overrides of the configuration the operator renders"
	// +listType=atomic
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`

	// Volumes added to the pods, for volumeMounts and the sidecars. The operator's volumes are
	// config, tmp and control; those names are refused.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(v, !(v.name in ['config', 'tmp', 'control']))",message="volumes must not be named config, tmp or control: the operator's volumes have those names"
	// +listType=map
	// +listMapKey=name
	// +optional
	Volumes []corev1.Volume `json:"volumes,omitempty"`

	// VolumeMounts added to the gateway container, of pod.volumes. Paths are absolute, without
	// a trailing slash, "." or ".." segments, and neither at, under nor above the operator's
	// mounts /etc/tcpgateway, /tmp and /var/run/tcpgateway.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(m, m.mountPath.matches('^(/[^/]+)+$') && !m.mountPath.matches('/[.]{1,2}(/|$)'))",message="volumeMounts[].mountPath must be an absolute path without a trailing slash, '//', '.' or '..'"
	// +kubebuilder:validation:XValidation:rule="self.all(m, ['/etc/tcpgateway', '/tmp', '/var/run/tcpgateway'].all(p, m.mountPath != p && !m.mountPath.startsWith(p + '/') && !p.startsWith(m.mountPath + '/')))",message="volumeMounts[].mountPath must not be at, under or above the operator's mounts /etc/tcpgateway, /tmp and /var/run/tcpgateway"
	// +listType=map
	// +listMapKey=mountPath
	// +optional
	VolumeMounts []VolumeMount `json:"volumeMounts,omitempty"`

	// Containers run beside the gateway (sidecars: a log shipper, a proxy). The name gateway
	// is the operator's container and is refused.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(c, c.name != 'gateway')",message="containers must not be named gateway: the operator's container has that name"
	// +listType=map
	// +listMapKey=name
	// +optional
	Containers []corev1.Container `json:"containers,omitempty"`

	// InitContainers run before the gateway starts (with restartPolicy Always: native
	// sidecars, started before the gateway and stopped after it). The name gateway is refused.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(c, c.name != 'gateway')",message="initContainers must not be named gateway: the operator's container has that name"
	// +listType=map
	// +listMapKey=name
	// +optional
	InitContainers []corev1.Container `json:"initContainers,omitempty"`

	// UserIDs: Fixed (default) runs the pods as user and group 65532 (the image's distroless
	// nonroot user) with fsGroup 65532. Assigned sets none of runAsUser, runAsGroup and
	// fsGroup, for platforms that assign them from a range of their own and refuse a fixed
	// 65532, such as OpenShift's restricted-v2 SCC; the other restrictions stay.
	// +optional
	UserIDs UserIDs `json:"userIDs,omitempty"`

	// SecurityContext of the pods, merged over the operator's (runAsNonRoot, runAsUser,
	// runAsGroup and fsGroup 65532, seccomp RuntimeDefault): a field set here replaces the
	// operator's, nested objects merge field by field, lists replace.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`

	// ContainerSecurityContext of the gateway container, merged over the operator's
	// (runAsNonRoot, runAsUser and runAsGroup 65532, read-only root file system, no privilege
	// escalation, capabilities drop ALL, seccomp RuntimeDefault) the same way, e.g.
	// capabilities.add [NET_BIND_SERVICE] for a port below 1024.
	// +optional
	ContainerSecurityContext *corev1.SecurityContext `json:"containerSecurityContext,omitempty"`
}

// UserIDs says who chooses the gateway pods' user and group IDs.
//
// +kubebuilder:validation:Enum=Fixed;Assigned
type UserIDs string

const (
	// UserIDsFixed: runAsUser, runAsGroup and fsGroup 65532.
	UserIDsFixed UserIDs = "Fixed"
	// UserIDsAssigned: none set; the platform's admission (OpenShift SCC) assigns them.
	UserIDsAssigned UserIDs = "Assigned"
)

// PodDisruptionBudgetSpec is the budget of the PodDisruptionBudget the operator renders. At
// most one of maxUnavailable and minAvailable; neither: maxUnavailable 1.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.maxUnavailable) && has(self.minAvailable))",message="set maxUnavailable or minAvailable, not both"
type PodDisruptionBudgetSpec struct {
	// MaxUnavailable: pods that voluntary evictions may take down at once, a number or a
	// percentage of spec.replicas ("25%"). 0 blocks every eviction (node drains then wait).
	// +kubebuilder:validation:XValidation:rule="type(self) == string ? self.matches('^(100|[1-9]?[0-9])%$') : self >= 0",message="must be a number ≥ 0 or a percentage from 0% to 100%"
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`

	// MinAvailable: pods that must stay up through voluntary evictions, a number or a
	// percentage of spec.replicas.
	// +kubebuilder:validation:XValidation:rule="type(self) == string ? self.matches('^(100|[1-9]?[0-9])%$') : self >= 0",message="must be a number ≥ 0 or a percentage from 0% to 100%"
	// +optional
	MinAvailable *intstr.IntOrString `json:"minAvailable,omitempty"`
}

// VolumeMount mounts one of pod.volumes into the gateway container: corev1.VolumeMount's
// common fields, with lengths bounded so that the API server can afford the rules on them.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.subPath) && has(self.subPathExpr))",message="set subPath or subPathExpr, not both"
type VolumeMount struct {
	// Name of one of pod.volumes.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// MountPath in the gateway container.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +required
	MountPath string `json:"mountPath"`

	// ReadOnly mounts the volume read-only.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`

	// SubPath within the volume to mount instead of its root.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SubPath string `json:"subPath,omitempty"`

	// SubPathExpr is subPath with $(VAR) references to the container's environment, such as
	// $(POD_NAME) for a folder per pod. At most one of subPath and subPathExpr.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SubPathExpr string `json:"subPathExpr,omitempty"`
}

// Mount is the corev1.VolumeMount of m.
func (m VolumeMount) Mount() corev1.VolumeMount {
	return corev1.VolumeMount{Name: m.Name, MountPath: m.MountPath, ReadOnly: m.ReadOnly, SubPath: m.SubPath, SubPathExpr: m.SubPathExpr}
}
