package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// ServiceProxy carries the control plane's traffic to Services, which a real cluster routes
// with kube-proxy and which nothing routes here (cluster IPs are never routed, see
// ServiceCIDR). It plays two parts, for kube-apiserver's aggregator (an APIService backed by a
// Service, such as the operator's custom metrics API) and nothing else:
//
//   - kube-proxy: an HTTP CONNECT proxy on a unix socket, which kube-apiserver dials through for
//     its "cluster" egress (--egress-selector-config-file, egressConfig): a tunnel to a
//     Service's clusterIP:port reaches one of the ready pods the Service selects, at its
//     targetPort resolved per pod; a tunnel to a loopback address (a pod's own) is dialled
//     as it is (localhost too); anything else is refused.
//   - the EndpointSlice controller, for ClusterIP Services with a selector: the aggregator
//     marks an APIService available only when its Service's EndpointSlices list a ready
//     endpoint with the Service port's name. Real slices would hold the pods' addresses,
//     which kube-apiserver refuses (loopback, see ControllerManagerControllers), so these
//     are of addressType FQDN, one endpoint per ready pod named <pod>.<namespace>.pod.local
//     (a name nothing resolves: traffic goes through the proxy, which picks pods itself),
//     labelled endpointslice.kubernetes.io/managed-by: local-cluster-service-proxy. (FQDN
//     is deprecated: kube-apiserver v1.37 warns at each write, and still stores it and its
//     aggregator counts it.)
//
// This is a property of the local cluster only: a product Service and APIService (the chart's)
// work unchanged on it and on a real cluster.
type ServiceProxy struct {
	ln     net.Listener
	dir    string // holds the socket; removed by stop
	client kubernetes.Interface
	log    *slog.Logger
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}
	// ready is closed when the listers below are set and synced.
	ready chan struct{}
	svcs  corelisters.ServiceLister
	pods  corelisters.PodLister

	mu      sync.Mutex
	tunnels map[net.Conn]bool // both ends of every open tunnel, closed by stop; guarded by mu
	stopped bool              // guarded by mu
}

// EndpointSliceManager is the managed-by label value of the proxy's slices.
const EndpointSliceManager = "local-cluster-service-proxy"

// listenServiceProxy opens the proxy's unix socket (kube-apiserver's egress takes HTTP CONNECT
// over TCP only with mutual TLS, over a unix socket as it is), so its path can go into
// kube-apiserver's egress configuration before either starts. The socket lives in a
// directory of its own under the system's temporary directory: a socket path is limited to
// 108 bytes, which a test's directory can exceed.
func listenServiceProxy(log *slog.Logger) (*ServiceProxy, error) {
	dir, err := os.MkdirTemp("", "tcpgw-svcproxy-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "proxy.sock"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &ServiceProxy{ln: ln, dir: dir, log: log, kick: make(chan struct{}, 1), ready: make(chan struct{}),
		tunnels: map[net.Conn]bool{}}, nil
}

// Socket is the path of the proxy's unix socket.
func (p *ServiceProxy) Socket() string { return p.ln.Addr().String() }

// egressConfig is the EgressSelectorConfiguration sending kube-apiserver's "cluster" traffic
// (to Services and webhooks) through the proxy.
func (p *ServiceProxy) egressConfig() string {
	return `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: ` + p.Socket() + `
`
}

// start serves tunnels and keeps the EndpointSlices, until stop.
func (p *ServiceProxy) start(ctx context.Context, client kubernetes.Interface) error {
	ctx, cancel := context.WithCancel(ctx)
	p.cancel, p.client = cancel, client
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serveConnect), ReadHeaderTimeout: 5 * time.Second}
	p.wg.Go(func() { _ = p.srv.Serve(p.ln) })
	f := informers.NewSharedInformerFactory(client, 0)
	si, pi := f.Core().V1().Services(), f.Core().V1().Pods()
	p.svcs, p.pods = si.Lister(), pi.Lister()
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.trigger() },
		UpdateFunc: func(any, any) { p.trigger() },
		DeleteFunc: func(any) { p.trigger() },
	}
	for _, inf := range []cache.SharedIndexInformer{si.Informer(), pi.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), si.Informer().HasSynced, pi.Informer().HasSynced) {
		f.Shutdown()
		return fmt.Errorf("service proxy: informers did not sync")
	}
	close(p.ready)
	p.wg.Go(func() {
		defer f.Shutdown()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.kick:
				p.syncSlices(ctx)
			}
		}
	})
	p.trigger()
	return nil
}

func (p *ServiceProxy) trigger() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// stop closes the listener and every open tunnel (the server's Close leaves hijacked
// connections alone, and kube-apiserver keeps its tunnels open while idle).
func (p *ServiceProxy) stop() {
	if p.cancel != nil {
		p.cancel()
	}
	if p.srv != nil {
		_ = p.srv.Close()
	} else {
		_ = p.ln.Close()
	}
	p.mu.Lock()
	p.stopped = true
	for c := range p.tunnels {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	_ = os.RemoveAll(p.dir)
}

// track records c as a tunnel end until untrack; false (and c closed) after stop.
func (p *ServiceProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.tunnels[c] = true
	}
	return true
}

func (p *ServiceProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.tunnels, c)
	}
}

// serveConnect answers CONNECT host:port with a tunnel to the resolved backend.
func (p *ServiceProxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	select {
	case <-p.ready:
	default:
		http.Error(w, "service proxy not ready", http.StatusServiceUnavailable)
		return
	}
	// The request target; kube-apiserver's Host header says 127.0.0.1 whatever the target.
	backend, err := p.resolve(r.URL.Host)
	if err != nil {
		p.log.Warn("service proxy refused a tunnel", "to", r.URL.Host, "err", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	up, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(r.Context(), "tcp", backend)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = up.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	down, _, err := hj.Hijack()
	if err != nil {
		_ = up.Close()
		return
	}
	if _, err := io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		_ = up.Close()
		_ = down.Close()
		return
	}
	// The client speaks first (TLS), after reading the 200: nothing is buffered on down yet.
	if !p.track(up, down) {
		return
	}
	p.wg.Go(func() {
		pipe(up, down)
		p.untrack(up, down)
	})
}

// pipe copies both ways until either side ends, then closes both.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	<-done
	_ = a.Close()
	_ = b.Close()
	<-done
}

// resolve maps a tunnel's host:port to a backend address: a Service's cluster IP and port to
// a ready pod it selects, a loopback address to itself.
func (p *ServiceProxy) resolve(hostport string) (string, error) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if host == "localhost" {
		return hostport, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP address", host)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return "", err
	}
	if ip.IsLoopback() {
		return hostport, nil
	}
	svcs, err := p.svcs.List(labels.Everything())
	if err != nil {
		return "", err
	}
	for _, svc := range svcs {
		if svc.Spec.ClusterIP != host || len(svc.Spec.Selector) == 0 {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if int(sp.Port) != port || (sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP) {
				continue
			}
			var backends []string
			for _, pod := range p.readyPods(svc) {
				if tp := targetPort(pod, sp); tp != 0 {
					backends = append(backends, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(tp))))
				}
			}
			if len(backends) == 0 {
				return "", fmt.Errorf("service %s/%s has no ready pod for port %d", svc.Namespace, svc.Name, port)
			}
			return backends[rand.IntN(len(backends))], nil //nolint:gosec // backend choice, not security
		}
	}
	return "", fmt.Errorf("%s is no Service's cluster IP and port", hostport)
}

// readyPods are the pods svc selects that an endpoint controller would call ready.
func (p *ServiceProxy) readyPods(svc *corev1.Service) []*corev1.Pod {
	pods, err := p.pods.Pods(svc.Namespace).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for _, pod := range pods {
		if pod.Status.PodIP != "" && pod.DeletionTimestamp == nil && podReady(pod) {
			out = append(out, pod)
		}
	}
	return out
}

// syncSlices writes one FQDN EndpointSlice per ClusterIP Service with a selector, named like
// the Service, and deletes the proxy's slices of Services that went away.
func (p *ServiceProxy) syncSlices(ctx context.Context) {
	svcs, err := p.svcs.List(labels.Everything())
	if err != nil {
		return
	}
	want := map[string]bool{}
	for _, svc := range svcs {
		if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP == corev1.ClusterIPNone ||
			svc.Spec.ClusterIP == "" || len(svc.Spec.Selector) == 0 || svc.DeletionTimestamp != nil {
			continue
		}
		want[svc.Namespace+"/"+svc.Name] = true
		p.writeSlice(ctx, svc, EndpointSliceFor(svc, p.readyPods(svc)))
	}
	slices, err := p.client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelManagedBy + "=" + EndpointSliceManager})
	if err != nil {
		return
	}
	for _, s := range slices.Items {
		if !want[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]] {
			_ = p.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
		}
	}
}

func (p *ServiceProxy) writeSlice(ctx context.Context, svc *corev1.Service, want *discoveryv1.EndpointSlice) {
	api := p.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	cur, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		if equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, want.Ports) {
			return
		}
		cur.Endpoints, cur.Ports = want.Endpoints, want.Ports
		_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil && ctx.Err() == nil {
		p.log.Warn("service proxy: writing an EndpointSlice failed", "service", svc.Namespace+"/"+svc.Name, "err", err)
	}
}

// EndpointSliceFor is the slice the proxy publishes for svc and its ready pods: the
// Service's port names and numbers (a named targetPort resolved on the first pod that has
// it), one FQDN endpoint per pod.
func EndpointSliceFor(svc *corev1.Service, ready []*corev1.Pod) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      svc.Name + "-local",
			Namespace: svc.Namespace,
			Labels:    map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: EndpointSliceManager},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		AddressType: discoveryv1.AddressTypeFQDN,
	}
	for _, sp := range svc.Spec.Ports {
		port := int32(0)
		for _, pod := range ready {
			if port = targetPort(pod, sp); port != 0 {
				break
			}
		}
		if port == 0 {
			continue
		}
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(port),
			Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	for _, pod := range ready {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{pod.Name + "." + pod.Namespace + ".pod.local"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			NodeName:   ptr.To(pod.Spec.NodeName),
		})
	}
	return s
}
