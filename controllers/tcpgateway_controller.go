package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
)

// DefaultKafkaTimeout bounds one reconcile's Kafka calls.
const DefaultKafkaTimeout = 15 * time.Second

// TCPGatewayReconciler reconciles TCPGateway objects.
type TCPGatewayReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Topics creates, grows and deletes the Kafka topics.
	Topics TopicManager
	// SecretReader reads the Secrets spec.kafka references, for the topic management. It must
	// not be a cached client (cmd/manager passes mgr.GetAPIReader()): the operator may get
	// Secrets but not list or watch them, so no cache of the cluster's Secrets exists.
	SecretReader client.Reader
	// KafkaTimeout bounds the Kafka calls of one reconcile. Default DefaultKafkaTimeout.
	KafkaTimeout time.Duration
	// Now is the clock, for the Kafka retry delay and the rebalance. Default time.Now.
	Now func() time.Time
	// SessionCounts reads the pods' session counts for the rebalance; the zero Reader has
	// the defaults.
	SessionCounts sessioncount.Reader
	// OperatorPeer selects the operator's own pods, which spec.networkPolicy admits to the
	// admin port (OperatorPeer). Nil: the operator is admitted only if its namespace is among
	// those metricsNamespaceSelector selects.
	OperatorPeer *networkingv1.NetworkPolicyPeer
}

// +kubebuilder:rbac:groups=tcpgateway.io,resources=tcpgateways,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tcpgateway.io,resources=tcpgateways/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tcpgateway.io,resources=tcpgateways/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile: get → finalizer → ordered object phases (the pods last, read only) → Kafka
// topics → rebalance → status.
//
// The object phases run in dependency order (the StatefulSet mounts the ConfigMap and names
// the headless Service) and stop at the first API error. The Kafka phase runs whatever
// happened before it and never fails the reconcile: its outcome is the KafkaReady condition,
// and while Kafka fails the reconcile is retried with a growing delay. With TLS or SASL to
// Kafka it is also repeated every kafkaRecheck, to notice changed Secrets.
func (r *TCPGatewayReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	defer func() { countConflict(err) }()
	gw := &v1alpha1.TCPGateway{}
	if err := r.Get(ctx, req.NamespacedName, gw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !gw.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, gw)
	}
	if err := r.reconcileFinalizer(ctx, gw); err != nil {
		return ctrl.Result{}, err
	}

	before := gw.DeepCopy()
	o := &observed{}
	o.reconcileErr = r.reconcileObjects(ctx, gw, o)
	if staleOrNotLeader(o.reconcileErr) {
		// Nothing to report in the status (nor could it be written): retried after the
		// rate limiter's delay, or by the watch event of the newer object.
		return ctrl.Result{}, o.reconcileErr
	}
	r.reconcileKafka(ctx, gw, o)
	rebalanceAfter := r.reconcileRebalance(ctx, gw, o)

	computeStatus(gw, o)
	r.recordTransitions(before, gw)
	if err := r.patchStatus(ctx, before, gw); err != nil {
		return ctrl.Result{}, errors.Join(o.reconcileErr, err)
	}
	countConditionChanges(before, gw)
	if o.reconcileErr != nil {
		return ctrl.Result{}, o.reconcileErr
	}
	var after time.Duration
	switch {
	case o.kafka.err != nil:
		after = r.kafkaRetryAfter(gw)
	case kafkaSecured(gw):
		after = kafkaRecheck
	}
	if rebalanceAfter > 0 && (after == 0 || rebalanceAfter < after) {
		after = rebalanceAfter
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// staleOrNotLeader: a write was refused because another writer changed the object since it
// was read (a resourceVersion conflict), or because this process no longer leads
// (ErrNotLeader). Neither says anything about the TCPGateway.
func staleOrNotLeader(err error) bool {
	return err != nil && (apierrors.IsConflict(err) || errors.Is(err, ErrNotLeader))
}

// reconcileObjects runs the object phases in order and returns the first error.
func (r *TCPGatewayReconciler) reconcileObjects(ctx context.Context, gw *v1alpha1.TCPGateway, o *observed) error {
	var rc *RenderedConfig
	phases := []func() error{
		func() (err error) { rc, err = r.reconcileConfigMap(ctx, gw, o); return err },
		func() error { return r.reconcileRebalanceKey(ctx, gw, o) },
		func() error { return r.reconcileHeadlessService(ctx, gw) },
		func() error { return r.reconcileClientService(ctx, gw, o) },
		func() error { return r.reconcileStatefulSet(ctx, gw, rc, o) },
		func() error { return r.reconcilePDB(ctx, gw) },
		func() error { return r.reconcileNetworkPolicy(ctx, gw) },
		func() error { return r.reconcileAutoscaler(ctx, gw, rc) },
		func() error { return r.observePods(ctx, gw, o) },
	}
	for _, phase := range phases {
		if err := phase(); err != nil {
			return err
		}
	}
	return nil
}

// reconcileConfigMap renders and writes the gateway configuration. An invalid configuration
// is recorded in o (Degraded=InvalidConfig) and leaves the ConfigMap as it was, so the running
// pods and any pod that restarts keep the last good configuration.
func (r *TCPGatewayReconciler) reconcileConfigMap(ctx context.Context, gw *v1alpha1.TCPGateway, o *observed) (*RenderedConfig, error) {
	rc, err := RenderConfig(gw)
	var invalid *InvalidConfigError
	if errors.As(err, &invalid) {
		o.configErr = err
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, err = ensureOwned(ctx, r, gw, configMapFrom(gw, rc), &corev1.ConfigMap{}, copyConfigMap, configMapInSync)
	return rc, err
}

func (r *TCPGatewayReconciler) reconcileHeadlessService(ctx context.Context, gw *v1alpha1.TCPGateway) error {
	_, err := ensureOwned(ctx, r, gw, HeadlessService(gw), &corev1.Service{}, copyService, serviceInSync)
	return err
}

func (r *TCPGatewayReconciler) reconcileClientService(ctx context.Context, gw *v1alpha1.TCPGateway, o *observed) error {
	svc, err := ensureOwned(ctx, r, gw, ClientService(gw), &corev1.Service{}, copyService, serviceInSync)
	if err == nil {
		o.clientService = svc
	}
	return err
}

// reconcileStatefulSet writes the StatefulSet, or with an invalid configuration (rc nil) only
// reads it for the status: rolling pods onto a configuration they would refuse is the crash
// loop InvalidConfig exists to avoid.
func (r *TCPGatewayReconciler) reconcileStatefulSet(ctx context.Context, gw *v1alpha1.TCPGateway, rc *RenderedConfig, o *observed) error {
	if rc == nil {
		sts := &appsv1.StatefulSet{}
		err := r.Get(ctx, client.ObjectKey{Namespace: gw.Namespace, Name: statefulSetName(gw)}, sts)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("while getting StatefulSet %s: %w", statefulSetName(gw), err)
		}
		o.statefulSet = sts
		return nil
	}
	sts, err := ensureOwned(ctx, r, gw, StatefulSet(gw, rc), &appsv1.StatefulSet{}, copyStatefulSet, statefulSetInSync)
	if err == nil {
		o.statefulSet = sts
	}
	return err
}

func (r *TCPGatewayReconciler) reconcilePDB(ctx context.Context, gw *v1alpha1.TCPGateway) error {
	_, err := ensureOwned(ctx, r, gw, PodDisruptionBudget(gw), &policyv1.PodDisruptionBudget{}, copyPDB, pdbInSync)
	return err
}

// reconcileNetworkPolicy writes the NetworkPolicy of spec.networkPolicy, or deletes the one
// this TCPGateway owns when it is not enabled (an object of that name it does not own is
// left alone).
func (r *TCPGatewayReconciler) reconcileNetworkPolicy(ctx context.Context, gw *v1alpha1.TCPGateway) error {
	if desired := NetworkPolicy(gw, r.OperatorPeer); desired != nil {
		_, err := ensureOwned(ctx, r, gw, desired, &networkingv1.NetworkPolicy{}, copyNetworkPolicy, networkPolicyInSync)
		return err
	}
	current := &networkingv1.NetworkPolicy{}
	err := r.Get(ctx, client.ObjectKey{Namespace: gw.Namespace, Name: networkPolicyName(gw)}, current)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("while getting NetworkPolicy %s: %w", networkPolicyName(gw), err)
	case !metav1.IsControlledBy(current, gw):
		return nil
	}
	// Preconditions: the object read, not one created since under the same name.
	uid, rv := current.UID, current.ResourceVersion
	if err := r.Delete(ctx, current, client.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("while deleting NetworkPolicy %s: %w", current.Name, err)
	}
	return nil
}

func (r *TCPGatewayReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// OwnedCacheOptions restricts the manager's cache of the owned kinds, and of the gateway pods
// (whose template carries the same labels), to the objects the operator labelled: caching
// every ConfigMap, Service and Pod of the cluster would cost memory for nothing. An object of
// ours that lost its label is invisible to the reconciler, which then fails to create it
// (AlreadyExists) and says so in the Degraded condition.
func OwnedCacheOptions() map[client.Object]cache.ByObject {
	owned := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})}
	return map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}:                      owned,
		&corev1.Service{}:                        owned,
		&appsv1.StatefulSet{}:                    owned,
		&policyv1.PodDisruptionBudget{}:          owned,
		&networkingv1.NetworkPolicy{}:            owned,
		&autoscalingv2.HorizontalPodAutoscaler{}: owned,
		&corev1.Pod{}:                            owned,
	}
}

// SetupWithManager registers the reconciler: it watches TCPGateways, the objects they own,
// and the gateway pods (owned by the StatefulSet, mapped to their TCPGateway by label) when
// their failure changes. maxConcurrent bounds parallel reconciles (each may wait up to
// KafkaTimeout on Kafka).
func (r *TCPGatewayReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrent int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.TCPGateway{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(gatewayOfPod),
			builder.WithPredicates(podFailureChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrent}).
		Named("tcpgateway").
		Complete(r)
}
