// Command manager is the tcpgateway operator: it reconciles TCPGateway resources into
// StatefulSets, Services, ConfigMaps, PodDisruptionBudgets and Kafka topics (see controllers).
//
// Kubernetes access: in-cluster, or --kubeconfig (registered by controller-runtime), or
// $KUBECONFIG.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers"
)

func main() {
	var (
		metricsAddr   = flag.String("metrics-bind-address", ":8080", "address of the metrics endpoint; 0 disables it")
		probeAddr     = flag.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
		leaderElect   = flag.Bool("leader-elect", false, "elect a leader, so that only one replica of the manager reconciles")
		leaderNS      = flag.String("leader-election-namespace", "", "namespace of the leader election Lease; default: the manager's own (in a cluster)")
		concurrent    = flag.Int("max-concurrent-reconciles", 2, "TCPGateways reconciled in parallel")
		kafkaTimeout  = flag.Duration("kafka-timeout", controllers.DefaultKafkaTimeout, "bound on one reconcile's Kafka calls")
		kafkaDialWait = flag.Duration("kafka-dial-timeout", 5*time.Second, "bound on connecting to one Kafka broker")
	)
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	o := options{
		metricsAddr: *metricsAddr, probeAddr: *probeAddr, leaderElect: *leaderElect, leaderNS: *leaderNS,
		concurrent: *concurrent, kafkaTimeout: *kafkaTimeout, kafkaDial: *kafkaDialWait,
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

type options struct {
	metricsAddr, probeAddr string
	leaderElect            bool
	leaderNS               string
	concurrent             int
	kafkaTimeout           time.Duration
	kafkaDial              time.Duration
}

func run(o options) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("while loading the Kubernetes client configuration: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "tcpgateway.io",
		LeaderElectionNamespace:       o.leaderNS,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cache.Options{ByObject: controllers.OwnedCacheOptions()},
		// The operator may get Secrets, not list or watch them (it reads the ones spec.kafka
		// references through SecretReader below): a Secret read through the manager's client
		// must never start a cluster-wide informer.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	if err != nil {
		return fmt.Errorf("while creating the manager: %w", err)
	}

	r := &controllers.TCPGatewayReconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("tcpgateway-operator"),
		Topics:       &controllers.KafkaTopics{DialTimeout: o.kafkaDial},
		SecretReader: mgr.GetAPIReader(),
		KafkaTimeout: o.kafkaTimeout,
	}
	if err := r.SetupWithManager(mgr, o.concurrent); err != nil {
		return fmt.Errorf("while setting up the TCPGateway controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.Info("starting the manager")
	return mgr.Start(ctrl.SetupSignalHandler())
}
