// Package v1alpha1 contains the API of the tcpgateway operator: the TCPGateway kind in the
// tcpgateway.io group. It imports only k8s.io/apimachinery and k8s.io/api, so that clients can
// use it without pulling in controller-runtime.
//
// +kubebuilder:object:generate=true
// +groupName=tcpgateway.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "tcpgateway.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &TCPGateway{}, &TCPGatewayList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
