package controllers

import (
	"context"
	"crypto/rand"
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/rebalance"
)

// The rebalance key: a Secret the operator creates with spec.rebalance.enabled, holding the
// HMAC key that signs its requests to the pods (gateway/rebalance, docs/security.md), mounted
// into the pods' config volume. Only the operator and the pods hold it.

// +kubebuilder:rbac:groups="",resources=secrets,verbs=create

const (
	// RebalanceKeyDir holds the key in the config volume (gateway listen.rebalanceKeyFile).
	RebalanceKeyDir = "rebalance"
	// RebalanceSecretKey is the key of the Secret's data holding it.
	RebalanceSecretKey = "key"
)

var rebalanceKeyFile = path.Join(RebalanceKeyDir, RebalanceSecretKey)

func rebalanceSecretName(gw *v1alpha1.TCPGateway) string { return gw.Name + "-rebalance" }

// rebalanceEnabled is spec.rebalance.enabled.
func rebalanceEnabled(gw *v1alpha1.TCPGateway) bool {
	return gw.Spec.Rebalance != nil && gw.Spec.Rebalance.Enabled
}

// RebalanceSecret is the key Secret holding key.
func RebalanceSecret(gw *v1alpha1.TCPGateway, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: rebalanceSecretName(gw), Namespace: gw.Namespace, Labels: objectLabels(gw)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{RebalanceSecretKey: key},
	}
}

// rebalanceProjection mounts the key into the config volume, with spec.rebalance.enabled.
func rebalanceProjection(gw *v1alpha1.TCPGateway) []corev1.VolumeProjection {
	if !rebalanceEnabled(gw) {
		return nil
	}
	return []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{
		LocalObjectReference: corev1.LocalObjectReference{Name: rebalanceSecretName(gw)},
		Items:                []corev1.KeyToPath{{Key: RebalanceSecretKey, Path: rebalanceKeyFile}},
	}}}
}

// reconcileRebalanceKey makes sure the key Secret exists with spec.rebalance.enabled and puts
// its key in o for the rebalance phase. It reads it with the uncached SecretReader (a plain
// get: the operator may not list or watch Secrets) and creates it, with a new random key,
// when it is missing. A Secret of that name that this TCPGateway does not control, or whose
// key is too short, is an error: its key would be someone else's choice. The Secret stays
// when rebalancing is turned off (the pods stop mounting it) and goes with the TCPGateway.
func (r *TCPGatewayReconciler) reconcileRebalanceKey(ctx context.Context, gw *v1alpha1.TCPGateway, o *observed) error {
	if !rebalanceEnabled(gw) {
		return nil
	}
	name := rebalanceSecretName(gw)
	current := &corev1.Secret{}
	err := r.SecretReader.Get(ctx, client.ObjectKey{Namespace: gw.Namespace, Name: name}, current)
	switch {
	case apierrors.IsNotFound(err):
		key := make([]byte, rebalance.KeyBytes)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("while making the rebalance key: %w", err)
		}
		desired := RebalanceSecret(gw, key)
		if err := controllerutil.SetControllerReference(gw, desired, r.Scheme); err != nil {
			return fmt.Errorf("while setting the owner of Secret %s: %w", name, err)
		}
		if err := r.Create(ctx, desired); err != nil {
			return fmt.Errorf("while creating Secret %s: %w", name, err)
		}
		o.rebalanceKey = key
		return nil
	case err != nil:
		return fmt.Errorf("while getting Secret %s: %w", name, err)
	case !metav1.IsControlledBy(current, gw):
		return fmt.Errorf("the Secret %s exists and is not controlled by this TCPGateway: delete it, the operator makes its own", name)
	case len(current.Data[RebalanceSecretKey]) < rebalance.MinKeyBytes:
		return fmt.Errorf("the Secret %s: key %q holds %d bytes, at least %d needed: delete the Secret, the operator makes a new one",
			name, RebalanceSecretKey, len(current.Data[RebalanceSecretKey]), rebalance.MinKeyBytes)
	}
	o.rebalanceKey = current.Data[RebalanceSecretKey]
	return nil
}
