package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/tcpgateway/tcpgateway/controllers"
	"github.com/tcpgateway/tcpgateway/controllers/custommetrics"
	"github.com/tcpgateway/tcpgateway/controllers/sessioncount"
)

// addCustomMetrics adds the custom metrics API server to the manager when
// --custom-metrics-port is set. It lists the gateway pods from the manager's cache and reads
// their counts at each request; every replica serves, leader or not.
func addCustomMetrics(mgr ctrl.Manager, o options) error {
	if o.customMetricsPort == 0 {
		return nil
	}
	srv, err := custommetrics.NewServer(custommetrics.ServerOptions{
		BindAddress: o.customMetricsBind,
		Port:        o.customMetricsPort,
		CertDir:     o.customMetricsCertDir,
		Kubeconfig:  kubeconfigPath(),
	}, &custommetrics.Provider{Pods: mgr.GetCache(), Counter: &sessioncount.Reader{}, PortName: controllers.AdminPortName})
	if err != nil {
		return err
	}
	if err := mgr.Add(srv); err != nil {
		return fmt.Errorf("while adding the custom metrics API server: %w", err)
	}
	return nil
}

// kubeconfigPath is the kubeconfig file the manager's own client uses, as controller-runtime
// finds it (--kubeconfig, then $KUBECONFIG), or "" for in-cluster: the custom metrics server's
// delegated authentication and authorization must talk to the same API server.
func kubeconfigPath() string {
	if f := flag.Lookup("kubeconfig"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return os.Getenv("KUBECONFIG")
}
