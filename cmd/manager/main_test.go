package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tcpgateway/tcpgateway/controllers"
)

func TestOperatorPeer(t *testing.T) {
	peer, err := operatorPeer(options{})
	if peer != nil || err != nil {
		t.Errorf("no labels: %v, %v; want nil, nil", peer, err)
	}
	peer, err = operatorPeer(options{operatorPodLabels: "app.kubernetes.io/name=tcpgateway,app.kubernetes.io/component=operator", operatorNS: "ops"})
	want := controllers.OperatorPeer("ops", map[string]string{"app.kubernetes.io/name": "tcpgateway", "app.kubernetes.io/component": "operator"})
	if err != nil || !reflect.DeepEqual(peer, want) {
		t.Errorf("got %+v, %v; want %+v", peer, err, want)
	}
	if _, err := operatorPeer(options{operatorPodLabels: "a in (b)", operatorNS: "ops"}); err == nil || !strings.Contains(err.Error(), "--operator-pod-labels") {
		t.Errorf("a selector that is not k=v: %v, want an error naming the flag", err)
	}
}
