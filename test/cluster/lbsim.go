package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/tcpgateway/tcpgateway/test/lb"
)

// LBOptions configure an LBSimulator.
type LBOptions struct {
	// DeregistrationDelay of every load balancer (lb.Options).
	DeregistrationDelay time.Duration
	// Balance of every load balancer (lb.Options): least connections by default, or random
	// like the cloud balancers that hash each connection.
	Balance lb.Balance
	// Logger receives the simulator's and the balancers' events; nil discards them.
	Logger *slog.Logger
}

// LBSimulator implements Services of type LoadBalancer: each gets an ingress address
// 127.0.20.x (127.0.20.1 .. 127.0.20.254, never two Services at once) written to
// status.loadBalancer.ingress, and one test/lb.LB per TCP port listening on ingress:port.
// Backends are the ready pods the Service selects, at the targetPort resolved per pod (name
// or number), computed from Pods exactly as the EndpointSlice controller would: the real
// EndpointSlices cannot be used because kube-apiserver rejects loopback endpoint addresses
// ("may not be in the loopback range"), so the cluster does not run that controller (see
// ControllerManagerControllers). Backends
// that stop being ready or disappear are lb.Remove'd, so they keep receiving connections for the deregistration
// delay. Deleting the Service (or changing its type) closes its balancers.
type LBSimulator struct {
	client kubernetes.Interface
	opts   LBOptions
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	svcs corelisters.ServiceLister
	pods corelisters.PodLister

	mu    sync.Mutex
	state map[types.UID]*lbService
}

type lbService struct {
	ns, name string
	ip       netip.Addr
	lbs      map[int32]*lbPort // by service port
}

type lbPort struct {
	lb       *lb.LB
	name     string
	backends map[string]bool // added and not yet removed
}

// StartLBSimulator starts watching Services and Pods.
func StartLBSimulator(ctx context.Context, client kubernetes.Interface, opts LBOptions) (*LBSimulator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &LBSimulator{client: client, opts: opts, log: opts.Logger, cancel: cancel,
		kick: make(chan struct{}, 1), state: map[types.UID]*lbService{}}
	f := informers.NewSharedInformerFactory(client, 0)
	si, ei := f.Core().V1().Services(), f.Core().V1().Pods()
	s.svcs, s.pods = si.Lister(), ei.Lister()
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.trigger() },
		UpdateFunc: func(any, any) { s.trigger() },
		DeleteFunc: func(any) { s.trigger() },
	}
	for _, inf := range []cache.SharedIndexInformer{si.Informer(), ei.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			cancel()
			return nil, err
		}
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), si.Informer().HasSynced, ei.Informer().HasSynced) {
		cancel()
		f.Shutdown()
		return nil, fmt.Errorf("lb simulator: informers did not sync")
	}
	s.wg.Go(func() {
		defer f.Shutdown()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
				s.reconcile(ctx)
			}
		}
	})
	s.trigger()
	return s, nil
}

func (s *LBSimulator) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Stop closes every balancer.
func (s *LBSimulator) Stop() {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, st := range s.state {
		s.closeService(st)
		delete(s.state, uid)
	}
}

// Stats returns the statistics of the balancer for a Service port, if it runs.
func (s *LBSimulator) Stats(namespace, name string, port int32) (lb.Stats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.state {
		if st.ns == namespace && st.name == name {
			if p, ok := st.lbs[port]; ok {
				return p.lb.Stats(), true
			}
		}
	}
	return lb.Stats{}, false
}

func (s *LBSimulator) closeService(st *lbService) {
	for _, p := range st.lbs {
		_ = p.lb.Close()
	}
	s.log.Info("load balancer removed", "service", st.ns+"/"+st.name, "ip", st.ip)
}

// reconcile makes the balancers match every Service and Pod in the caches.
func (s *LBSimulator) reconcile(ctx context.Context) {
	svcs, err := s.svcs.List(labels.Everything())
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[types.UID]*corev1.Service{}
	for _, svc := range svcs {
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.DeletionTimestamp == nil {
			want[svc.UID] = svc
		}
	}
	for uid, st := range s.state {
		if want[uid] == nil {
			s.closeService(st)
			delete(s.state, uid)
		}
	}
	for uid, svc := range want {
		st := s.state[uid]
		if st == nil {
			ip, err := s.allocate()
			if err != nil {
				s.log.Warn("no address for a load balancer", "service", svc.Namespace+"/"+svc.Name, "err", err)
				continue
			}
			st = &lbService{ns: svc.Namespace, name: svc.Name, ip: ip, lbs: map[int32]*lbPort{}}
			s.state[uid] = st
			s.log.Info("load balancer created", "service", svc.Namespace+"/"+svc.Name, "ip", ip)
		}
		s.syncPorts(svc, st)
		s.syncBackends(svc, st)
		if !hasIngress(svc, st.ip) {
			s.writeIngress(ctx, svc, st.ip)
		}
	}
}

func (s *LBSimulator) allocate() (netip.Addr, error) {
	for i := 1; i <= 254; i++ {
		ip := netip.AddrFrom4([4]byte{127, 0, 20, byte(i)})
		if !slices.ContainsFunc(mapsValues(s.state), func(st *lbService) bool { return st.ip == ip }) {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("all 254 load balancer addresses are in use")
}

func mapsValues(m map[types.UID]*lbService) []*lbService {
	out := make([]*lbService, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func (s *LBSimulator) syncPorts(svc *corev1.Service, st *lbService) {
	ports := map[int32]string{}
	for _, p := range svc.Spec.Ports {
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			ports[p.Port] = p.Name
		}
	}
	for port, p := range st.lbs {
		if name, ok := ports[port]; !ok || name != p.name {
			_ = p.lb.Close()
			delete(st.lbs, port)
		}
	}
	for port, name := range ports {
		if st.lbs[port] != nil {
			continue
		}
		addr := net.JoinHostPort(st.ip.String(), strconv.Itoa(int(port)))
		l, err := lb.New(addr, lb.Options{DeregistrationDelay: s.opts.DeregistrationDelay, Balance: s.opts.Balance,
			Logger: s.log.With("service", svc.Namespace+"/"+svc.Name)})
		if err != nil {
			s.log.Warn("load balancer listen failed", "addr", addr, "err", err)
			continue
		}
		st.lbs[port] = &lbPort{lb: l, name: name, backends: map[string]bool{}}
	}
}

func (s *LBSimulator) syncBackends(svc *corev1.Service, st *lbService) {
	var pods []*corev1.Pod
	if len(svc.Spec.Selector) > 0 {
		var err error
		if pods, err = s.pods.Pods(svc.Namespace).List(labels.SelectorFromSet(svc.Spec.Selector)); err != nil {
			return
		}
	}
	for port, p := range st.lbs {
		var sp corev1.ServicePort
		for _, x := range svc.Spec.Ports {
			if x.Port == port {
				sp = x
			}
		}
		want := map[string]bool{}
		for _, pod := range pods {
			if pod.Status.PodIP == "" || pod.DeletionTimestamp != nil || !podReady(pod) {
				continue
			}
			if tp := targetPort(pod, sp); tp != 0 {
				want[net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(tp)))] = true
			}
		}
		for b := range want {
			if !p.backends[b] {
				p.lb.Add(b)
				p.backends[b] = true
			}
		}
		for b := range p.backends {
			if !want[b] {
				p.lb.Remove(b)
				delete(p.backends, b)
			}
		}
	}
}

// podReady is the condition the EndpointSlice controller reports as endpoint readiness.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// targetPort resolves a Service port's targetPort on one pod, as the EndpointSlice
// controller does: a number is used as is (the port itself when unset), a name is looked
// up among the pod's container ports.
func targetPort(pod *corev1.Pod, sp corev1.ServicePort) int32 {
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == sp.TargetPort.StrVal && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
					return cp.ContainerPort
				}
			}
		}
		return 0
	case sp.TargetPort.IntValue() != 0:
		return int32(sp.TargetPort.IntValue())
	}
	return sp.Port
}

func hasIngress(svc *corev1.Service, ip netip.Addr) bool {
	in := svc.Status.LoadBalancer.Ingress
	return len(in) == 1 && in[0].IP == ip.String()
}

func (s *LBSimulator) writeIngress(ctx context.Context, svc *corev1.Service, ip netip.Addr) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := s.client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != svc.UID {
			return apierrors.NewNotFound(corev1.Resource("services"), svc.Name)
		}
		cur.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String()}}
		_, err = s.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
		s.log.Warn("writing the load balancer ingress failed", "service", svc.Namespace+"/"+svc.Name, "err", err)
	}
}
