package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons set on pods a NodeAgent refuses (status.phase Failed, status.reason/message).
const (
	ReasonUnmappedBinary    = "UnmappedBinary"
	ReasonUnsupportedVolume = "UnsupportedVolume"
	ReasonUnsupportedPod    = "UnsupportedPod"
	ReasonConfigError       = "CreateContainerConfigError"
)

// refusal is a permanent reason not to run a pod.
type refusal struct{ reason, message string }

func (r *refusal) Error() string { return r.reason + ": " + r.message }

func refuse(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, message: fmt.Sprintf(format, args...)}
}

// errNotYet marks a transient preparation failure (a ConfigMap or Secret that does not
// exist yet): the kubelet keeps such pods in ContainerCreating and retries.
var errNotYet = errors.New("not yet")

// admit checks that the pod is something this agent can run faithfully.
func (a *NodeAgent) admit(pod *corev1.Pod) *refusal {
	s := &pod.Spec
	switch {
	case s.HostNetwork:
		return refuse(ReasonUnsupportedPod, "hostNetwork pods are not supported: every pod gets its own 127.0.x.y address")
	case len(s.InitContainers) > 0 || len(s.EphemeralContainers) > 0:
		return refuse(ReasonUnsupportedPod, "init and ephemeral containers are not supported")
	case len(s.Containers) != 1:
		return refuse(ReasonUnsupportedPod, "exactly one container per pod is supported, got %d", len(s.Containers))
	}
	for _, v := range s.Volumes {
		switch {
		case v.ConfigMap != nil, v.Secret != nil, v.EmptyDir != nil:
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ConfigMap == nil && src.Secret == nil {
					return refuse(ReasonUnsupportedVolume, "volume %q: only configMap and secret projections are supported", v.Name)
				}
			}
		default:
			return refuse(ReasonUnsupportedVolume, "volume %q: only configMap, secret, projected and emptyDir volumes are supported", v.Name)
		}
	}
	c := &s.Containers[0]
	if _, _, err := a.resolveBinary(c); err != nil {
		return err
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p != nil && p.HTTPGet == nil && p.TCPSocket == nil {
			return refuse(ReasonUnsupportedPod, "container %q: only httpGet and tcpSocket probes are supported", c.Name)
		}
	}
	if c.StartupProbe != nil {
		return refuse(ReasonUnsupportedPod, "container %q: startup probes are not supported", c.Name)
	}
	if l := c.Lifecycle; l != nil {
		if l.PostStart != nil {
			return refuse(ReasonUnsupportedPod, "container %q: postStart hooks are not supported", c.Name)
		}
		if h := l.PreStop; h != nil {
			switch {
			case h.HTTPGet != nil, h.Sleep != nil:
			case h.Exec != nil:
				if _, _, r := a.resolveHookBinary(c, h.Exec.Command); r != nil {
					return r
				}
			default:
				return refuse(ReasonUnsupportedPod, "container %q: only httpGet, exec and sleep preStop hooks are supported", c.Name)
			}
		}
	}
	for _, m := range c.VolumeMounts {
		if !slices.ContainsFunc(s.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
			return refuse(ReasonUnsupportedVolume, "volumeMount %q names no volume", m.Name)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef == nil && e.ValueFrom.ConfigMapKeyRef == nil && e.ValueFrom.SecretKeyRef == nil {
			return refuse(ReasonUnsupportedPod, "env %q: only fieldRef, configMapKeyRef and secretKeyRef are supported", e.Name)
		}
	}
	return nil
}

// resolveBinary applies NodeOptions.Binaries: it returns the local executable and the
// arguments to pass it (command[1:] then args, before expansion and rewriting).
func (a *NodeAgent) resolveBinary(c *corev1.Container) (string, []string, *refusal) {
	rest := func() []string {
		var out []string
		if len(c.Command) > 1 {
			out = append(out, c.Command[1:]...)
		}
		return append(out, c.Args...)
	}
	if len(c.Command) > 0 {
		if bin, ok := a.opts.Binaries[c.Command[0]]; ok {
			return bin, rest(), nil
		}
	}
	for _, key := range slices.Sorted(maps.Keys(a.opts.Binaries)) {
		if strings.HasPrefix(key, "/") {
			continue
		}
		if c.Image == key || strings.HasPrefix(c.Image, key+":") || strings.HasPrefix(c.Image, key+"@") {
			return a.opts.Binaries[key], rest(), nil
		}
	}
	what := fmt.Sprintf("image %q", c.Image)
	if len(c.Command) > 0 {
		what = fmt.Sprintf("command %q nor image %q", c.Command[0], c.Image)
	}
	return "", nil, refuse(ReasonUnmappedBinary, "container %q: neither %s is in the node agent's binary map", c.Name, what)
}

// resolveHookBinary finds the local executable of an exec hook's command: command[0] is
// looked up like a container's command (an exact "/..." key of NodeOptions.Binaries) or, when
// it names the container's own command[0], is the container's executable (which may have
// been mapped by image). It returns the executable and command[1:].
func (a *NodeAgent) resolveHookBinary(c *corev1.Container, command []string) (string, []string, *refusal) {
	if len(command) == 0 {
		return "", nil, refuse(ReasonUnsupportedPod, "container %q: exec hook without a command", c.Name)
	}
	if bin, ok := a.opts.Binaries[command[0]]; ok {
		return bin, command[1:], nil
	}
	if len(c.Command) > 0 && command[0] == c.Command[0] {
		bin, _, r := a.resolveBinary(c)
		return bin, command[1:], r
	}
	return "", nil, refuse(ReasonUnmappedBinary, "container %q: exec hook command %q is not in the node agent's binary map", c.Name, command[0])
}

// runSpec is everything needed to start the container process, and its hooks.
type runSpec struct {
	bin    string
	args   []string
	env    []string
	dir    string
	mounts []mount // longest container path first
}

// mount maps a container path to a host folder.
type mount struct{ container, host string }

// prepare writes the pod's volumes under dir/volumes and computes the process's command
// line and environment. It returns a *refusal for permanent problems and an error wrapping
// errNotYet for missing ConfigMaps or Secrets.
//
// Path rewriting rule: after $(VAR) expansion, every command argument, env value and the
// working directory that equals a volumeMount's mountPath or starts with mountPath+"/" has
// that prefix replaced by the volume's folder on the host (longest mountPath first); for
// arguments of the form -flag=VALUE or --flag=VALUE the VALUE part is rewritten the same
// way. The arguments of exec hooks are rewritten the same way, without $(VAR) expansion
// (the kubelet does none for hooks). Nothing else (in particular file contents) is rewritten.
func (a *NodeAgent) prepare(ctx context.Context, pod *corev1.Pod, ip netip.Addr, dir string) (*runSpec, error) {
	c := &pod.Spec.Containers[0]
	volDirs := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		vd := filepath.Join(dir, "volumes", v.Name)
		if err := os.RemoveAll(vd); err != nil {
			return nil, err
		}
		if v.EmptyDir != nil {
			// A short folder, linked from vd: unix sockets (the gateway's control socket) are
			// created in emptyDirs, and their paths hold at most 107 bytes.
			short := emptyDirPath(pod, v.Name)
			if err := os.RemoveAll(short); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(short, 0o755); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(filepath.Dir(vd), 0o755); err != nil {
				return nil, err
			}
			if err := os.Symlink(short, vd); err != nil {
				return nil, err
			}
			volDirs[v.Name] = short
			continue
		}
		if err := os.MkdirAll(vd, 0o755); err != nil {
			return nil, err
		}
		if err := a.writeVolume(ctx, pod.Namespace, v, vd); err != nil {
			return nil, err
		}
		volDirs[v.Name] = vd
	}
	saDir := filepath.Join(dir, "serviceaccount")
	saEnv, err := a.mountServiceAccount(ctx, pod, saDir)
	if err != nil {
		return nil, err
	}
	var mounts []mount
	if saEnv != nil {
		mounts = append(mounts, mount{container: ServiceAccountMountPath, host: saDir})
	}
	for _, m := range c.VolumeMounts {
		host := volDirs[m.Name]
		if m.SubPath != "" {
			host = filepath.Join(host, m.SubPath)
		}
		mounts = append(mounts, mount{container: strings.TrimSuffix(m.MountPath, "/"), host: host})
	}
	slices.SortFunc(mounts, func(x, y mount) int { return len(y.container) - len(x.container) })
	rewrite := func(s string) string { return rewritePath(s, mounts) }

	env, err := a.resolveEnv(ctx, pod, c, ip)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }

	bin, rawArgs, ref := a.resolveBinary(c)
	if ref != nil {
		return nil, ref
	}
	rs := &runSpec{bin: bin, dir: dir, mounts: mounts}
	for _, arg := range rawArgs {
		rs.args = append(rs.args, rewriteArg(expand(arg, lookup), mounts))
	}
	if c.WorkingDir != "" {
		rs.dir = rewrite(c.WorkingDir)
	}
	// The base environment of every pod process; the container's own env comes after and
	// wins. POD_IP is always set, like HOSTNAME, so programs can bind their pod address.
	rs.env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + dir,
		"HOSTNAME=" + pod.Name,
		"POD_IP=" + ip.String(),
		// The gateway binds listen addresses without a host to it (gateway/config): several
		// pods share this machine's network namespace, so they must not all bind 0.0.0.0.
		"TCPGW_BIND_HOST=" + ip.String(),
	}
	rs.env = append(rs.env, saEnv...)
	for _, e := range env {
		rs.env = append(rs.env, e.Name+"="+rewrite(e.Value))
	}
	return rs, nil
}

// emptyDirPath is where an emptyDir volume of the pod lives: a short path under the system's
// temporary folder, named by a hash of the pod's UID and the volume's name (so a retried
// preparation reuses it), linked from the pod's folder. removeEmptyDirs deletes them.
func emptyDirPath(pod *corev1.Pod, volume string) string {
	sum := sha256.Sum256([]byte(string(pod.UID) + "/" + volume))
	return filepath.Join(os.TempDir(), "tcpgw-ed-"+hex.EncodeToString(sum[:6]))
}

// removeEmptyDirs deletes the pod's emptyDir volumes, as the kubelet does when the pod goes.
func removeEmptyDirs(pod *corev1.Pod) {
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil {
			_ = os.RemoveAll(emptyDirPath(pod, v.Name))
		}
	}
}

// rewriteArg applies the mount rewriting rule to one command argument: the whole argument,
// or the VALUE of -flag=VALUE and --flag=VALUE.
func rewriteArg(arg string, mounts []mount) string {
	if i := strings.IndexByte(arg, '='); strings.HasPrefix(arg, "-") && i > 0 {
		return arg[:i+1] + rewritePath(arg[i+1:], mounts)
	}
	return rewritePath(arg, mounts)
}

// rewritePath applies the mount rewriting rule to one value.
func rewritePath(s string, mounts []mount) string {
	for _, m := range mounts {
		if s == m.container || strings.HasPrefix(s, m.container+"/") {
			return m.host + s[len(m.container):]
		}
	}
	return s
}

// expand does the kubelet's $(VAR) expansion: $(NAME) becomes NAME's value when defined and
// stays as is otherwise; $$ becomes a literal $ (so $$(NAME) yields "$(NAME)").
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			ref := s[i : i+3+end]
			if v, ok := lookup(s[i+2 : i+2+end]); ok {
				b.WriteString(v)
			} else {
				b.WriteString(ref)
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// resolveEnv computes the container's env (envFrom, then env, each value expanded against
// the variables defined before it, as the kubelet does).
func (a *NodeAgent) resolveEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, ip netip.Addr) ([]corev1.EnvVar, error) {
	vars := map[string]string{}
	var out []corev1.EnvVar
	set := func(n, v string) {
		if _, ok := vars[n]; ok {
			out = slices.DeleteFunc(out, func(e corev1.EnvVar) bool { return e.Name == n })
		}
		vars[n] = v
		out = append(out, corev1.EnvVar{Name: n, Value: v})
	}
	for _, ef := range c.EnvFrom {
		var data map[string]string
		var err error
		switch {
		case ef.ConfigMapRef != nil:
			data, err = a.configMapData(ctx, pod.Namespace, ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional)
		case ef.SecretRef != nil:
			data, err = a.secretData(ctx, pod.Namespace, ef.SecretRef.Name, ef.SecretRef.Optional)
		}
		if err != nil {
			return nil, err
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			set(ef.Prefix+k, data[k])
		}
	}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, lookup))
			continue
		}
		var v string
		switch vf := e.ValueFrom; {
		case vf.FieldRef != nil:
			var err error
			if v, err = fieldValue(pod, vf.FieldRef.FieldPath, ip); err != nil {
				return nil, err
			}
		case vf.ConfigMapKeyRef != nil:
			data, err := a.configMapData(ctx, pod.Namespace, vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Optional)
			if err != nil {
				return nil, err
			}
			v = data[vf.ConfigMapKeyRef.Key]
		case vf.SecretKeyRef != nil:
			data, err := a.secretData(ctx, pod.Namespace, vf.SecretKeyRef.Name, vf.SecretKeyRef.Optional)
			if err != nil {
				return nil, err
			}
			v = data[vf.SecretKeyRef.Key]
		}
		set(e.Name, v)
	}
	return out, nil
}

// fieldValue resolves the downward API fields a NodeAgent supports.
func fieldValue(pod *corev1.Pod, path string, ip netip.Addr) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return ip.String(), nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if k, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(k, "']") {
			return m[strings.TrimSuffix(k, "']")], nil
		}
	}
	return "", refuse(ReasonUnsupportedPod, "fieldRef %q is not supported", path)
}

func (a *NodeAgent) configMapData(ctx context.Context, ns, name string, optional *bool) (map[string]string, error) {
	cm, err := a.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if optional != nil && *optional {
			return nil, nil
		}
		return nil, fmt.Errorf("configmap %q not found: %w", name, errNotYet)
	}
	if err != nil {
		return nil, fmt.Errorf("configmap %q: %v: %w", name, err, errNotYet)
	}
	out := maps.Clone(cm.Data)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range cm.BinaryData {
		out[k] = string(v)
	}
	return out, nil
}

func (a *NodeAgent) secretData(ctx context.Context, ns, name string, optional *bool) (map[string]string, error) {
	s, err := a.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if optional != nil && *optional {
			return nil, nil
		}
		return nil, fmt.Errorf("secret %q not found: %w", name, errNotYet)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %q: %v: %w", name, err, errNotYet)
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out, nil
}

// writeVolume fills a volume's folder. File modes are not reproduced (the process runs as
// the agent's user); content and layout are.
func (a *NodeAgent) writeVolume(ctx context.Context, ns string, v corev1.Volume, dir string) error {
	type source struct {
		data  func() (map[string]string, error)
		items []corev1.KeyToPath
	}
	var srcs []source
	switch {
	case v.EmptyDir != nil:
		return nil
	case v.ConfigMap != nil:
		cm := v.ConfigMap
		srcs = append(srcs, source{func() (map[string]string, error) { return a.configMapData(ctx, ns, cm.Name, cm.Optional) }, cm.Items})
	case v.Secret != nil:
		s := v.Secret
		srcs = append(srcs, source{func() (map[string]string, error) { return a.secretData(ctx, ns, s.SecretName, s.Optional) }, s.Items})
	case v.Projected != nil:
		for _, p := range v.Projected.Sources {
			switch {
			case p.ConfigMap != nil:
				cm := p.ConfigMap
				srcs = append(srcs, source{func() (map[string]string, error) { return a.configMapData(ctx, ns, cm.Name, cm.Optional) }, cm.Items})
			case p.Secret != nil:
				s := p.Secret
				srcs = append(srcs, source{func() (map[string]string, error) { return a.secretData(ctx, ns, s.Name, s.Optional) }, s.Items})
			}
		}
	}
	for _, src := range srcs {
		data, err := src.data()
		if err != nil {
			return err
		}
		items := src.items
		if len(items) == 0 {
			for _, k := range slices.Sorted(maps.Keys(data)) {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			val, ok := data[it.Key]
			if !ok {
				return fmt.Errorf("volume %q: key %q missing: %w", v.Name, it.Key, errNotYet)
			}
			p := filepath.Join(dir, filepath.Clean("/"+it.Path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
