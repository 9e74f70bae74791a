package controllers

import (
	"maps"
	"math"
	"path"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

const (
	// ContainerName of the gateway container.
	ContainerName = "gateway"
	// GatewayBinary is the gateway's path in the image (see the Dockerfile).
	GatewayBinary = "/usr/local/bin/gateway"
	// ControlDir holds the gateway's control socket: an emptyDir, so the socket is reachable
	// only from inside the pod (the preStop hook), never over the network.
	ControlDir = "/var/run/tcpgateway"
	// ControlSocket is the gateway's listen.control (gateway/config's default) in ControlDir.
	ControlSocket = ControlDir + "/control.sock"
	// TmpDir is the gateway's writable scratch folder (the root file system is read-only).
	TmpDir = "/tmp"

	// nonRootID is the distroless "nonroot" user and group the image runs as.
	nonRootID = 65532

	portNameClient = "client"
	portNameAdmin  = "admin"
	// portNameWebSocket names the WebSocket port (spec.websocket) on the container and the
	// Services.
	portNameWebSocket = "websocket"
	// AdminPortName names the gateway container's admin port (read-only /metrics, where the
	// operator reads the pods' session counts).
	AdminPortName = portNameAdmin

	volumeConfig  = "config"
	volumeTmp     = "tmp"
	volumeControl = "control"
)

// StatefulSet builds the gateway StatefulSet from the TCPGateway and its rendered
// configuration (the grace period and the config-hash annotation come from it).
//
// Pods are a StatefulSet rather than a Deployment because each pod keeps its Kafka consumer
// offsets under a stable identity, its pod name (POD_NAME becomes the gateway's serverID).
func StatefulSet(gw *v1alpha1.TCPGateway, rc *RenderedConfig) *appsv1.StatefulSet {
	podAnnotations := maps.Clone(gw.Spec.PodAnnotations)
	if podAnnotations == nil {
		podAnnotations = map[string]string{}
	}
	podAnnotations[AnnotationConfigHash] = rc.Hash
	podAnnotations["kubectl.kubernetes.io/default-container"] = ContainerName
	// The schema refuses podLabels with the operator's keys; merged last, they win anyway.
	podLabels := maps.Clone(gw.Spec.PodLabels)
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	maps.Copy(podLabels, objectLabels(gw))
	pod := podTemplate(gw)

	spread := gw.Spec.TopologySpreadConstraints
	if len(spread) == 0 {
		// Best effort: a node failure should not take most of the fleet, but a small cluster
		// must still be able to schedule every replica.
		spread = []corev1.TopologySpreadConstraint{{
			MaxSkew:           1,
			TopologyKey:       corev1.LabelHostname,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selectorLabels(gw)},
		}}
	}

	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:      statefulSetName(gw),
			Namespace: gw.Namespace,
			Labels:    objectLabels(gw),
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas(gw)),
			ServiceName: headlessServiceName(gw),
			Selector:    &metav1.LabelSelector{MatchLabels: selectorLabels(gw)},
			// Pods do not depend on each other: start and stop them all at once. Rolling
			// updates still replace one pod at a time.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnnotations},
				Spec: corev1.PodSpec{
					// terminationGracePeriodSeconds = Drain.HardDeadline + config.TerminationGraceMargin
					// (gateway/config Drain.TerminationGracePeriod), rounded up. preStop runs the
					// whole drain (`gateway drain -wait` returns when it is over) and preStop time counts against
					// this period, so it must outlast the hard deadline by the time the process
					// needs to exit; otherwise the kubelet SIGKILLs a pod that was draining fine.
					TerminationGracePeriodSeconds: ptr.To(int64(math.Ceil(rc.Config.Drain.TerminationGracePeriod().Seconds()))),
					// The gateway never calls the Kubernetes API.
					AutomountServiceAccountToken: ptr.To(false),
					// Service environment variables are useless to the gateway and grow with the
					// namespace.
					EnableServiceLinks:        ptr.To(false),
					SecurityContext:           podSecurityContext(pod),
					ServiceAccountName:        pod.ServiceAccountName,
					ImagePullSecrets:          pod.ImagePullSecrets,
					PriorityClassName:         pod.PriorityClassName,
					InitContainers:            pod.InitContainers,
					Containers:                append([]corev1.Container{gatewayContainer(gw, pod)}, pod.Containers...),
					Volumes:                   append(volumes(gw, pod), pod.Volumes...),
					NodeSelector:              gw.Spec.NodeSelector,
					Tolerations:               gw.Spec.Tolerations,
					Affinity:                  gw.Spec.Affinity,
					TopologySpreadConstraints: spread,
				},
			},
		},
	}
	sts.Spec.Template.Spec.Containers[0].Resources = GatewayResources(gw.Spec.Resources, rc.Config.Limits, rc.Config.Listen.TLS != nil, rc.Config.Listen.WebSocket != nil)
	sts.Annotations = map[string]string{AnnotationSpecHash: specHash(sts.Labels, nil, sts.Spec)}
	return sts
}

// gatewayContainer is the operator's container, with the environment, mounts and security
// context pod adds to it (the operator's entries first: a user variable may refer to
// $(POD_NAME), and the schema refuses names and paths that would collide).
func gatewayContainer(gw *v1alpha1.TCPGateway, pod *v1alpha1.PodTemplate) corev1.Container {
	admin := intstr.FromString(portNameAdmin)
	ports := []corev1.ContainerPort{
		{Name: portNameClient, ContainerPort: clientPort(gw), Protocol: corev1.ProtocolTCP},
		{Name: portNameAdmin, ContainerPort: adminPort(gw), Protocol: corev1.ProtocolTCP},
	}
	if websocketEnabled(gw) {
		ports = append(ports, corev1.ContainerPort{Name: portNameWebSocket, ContainerPort: websocketPort(gw), Protocol: corev1.ProtocolTCP})
	}
	return corev1.Container{
		Name:    ContainerName,
		Image:   gw.Spec.Image,
		Command: []string{GatewayBinary, "-config", path.Join(ConfigDir, ConfigFile)},
		Ports:   ports,
		Env: append([]corev1.EnvVar{
			// POD_NAME becomes the gateway's serverID (see gateway/config Load).
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			// The same path as gateway.yaml's listen.control. A node maps volume paths in
			// the container's environment and command line, not inside files: the local
			// node agent (test/cluster), whose pods are processes, needs this copy.
			{Name: "TCPGW_LISTEN_CONTROL", Value: ControlSocket},
		}, pod.Env...),
		EnvFrom: pod.EnvFrom,
		// Readiness fails at once when a drain starts, so the endpoints drop the pod within
		// one period (2 s) of preStop; the gateway keeps accepting meanwhile
		// (drain.deregistrationDelay).
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: admin}},
			PeriodSeconds:    2,
			TimeoutSeconds:   1,
			SuccessThreshold: 1,
			FailureThreshold: 1,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: admin}},
			PeriodSeconds:    10,
			TimeoutSeconds:   2,
			SuccessThreshold: 1,
			FailureThreshold: 3,
		},
		// The drain starts from inside the pod: the admin port is read-only, so no other pod
		// can drain this one. `gateway drain -wait` returns once the drain is over, which is
		// what keeps preStop (and the pod) alive meanwhile.
		Lifecycle: &corev1.Lifecycle{
			PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
				Command: []string{GatewayBinary, "drain", "-socket", ControlSocket, "-wait"},
			}},
		},
		VolumeMounts: append([]corev1.VolumeMount{
			{Name: volumeConfig, MountPath: ConfigDir, ReadOnly: true},
			{Name: volumeTmp, MountPath: TmpDir},
			{Name: volumeControl, MountPath: ControlDir},
		}, userMounts(pod)...),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          gatewaySecurityContext(pod),
	}
}

// volumes: one projected volume at ConfigDir holding gateway.yaml from the ConfigMap, for
// JWT auth the referenced Secret keys under keys/ (KeysDir), and the TLS material and Kafka
// credentials the spec references in their folders (secretProjections). One volume rather
// than Secrets mounted inside a ConfigMap mount: nested mounts need a mount point inside a
// read-only volume. Projected volumes are updated in place (no subPath), so a rotated key,
// certificate or password reaches the running gateway, which re-reads those files.
func volumes(gw *v1alpha1.TCPGateway, pod *v1alpha1.PodTemplate) []corev1.Volume {
	sources := []corev1.VolumeProjection{{
		ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: configMapName(gw)},
			Items:                []corev1.KeyToPath{{Key: ConfigFile, Path: ConfigFile}},
		},
	}}
	if j := gw.Spec.Auth.JWT; j != nil {
		var items []corev1.KeyToPath
		for _, key := range []v1alpha1.SecretKeyName{j.HS256Key, j.RS256PublicKey, j.KeySet} {
			if key != "" {
				items = append(items, corev1.KeyToPath{Key: string(key), Path: path.Join("keys", string(key))})
			}
		}
		sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: j.SecretRef.Name},
			Items:                items,
		}})
	}
	sources = append(sources, secretProjections(gw)...)
	sources = append(sources, rebalanceProjection(gw)...)
	return []corev1.Volume{
		{Name: volumeConfig, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources:     sources,
			DefaultMode: ptr.To(configFileMode(pod)),
		}}},
		{Name: volumeTmp, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		// The control socket's folder; in memory, it holds nothing else.
		{Name: volumeControl, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
	}
}
