package custommetrics

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"github.com/spf13/pflag"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// ServerOptions configure the API server.
type ServerOptions struct {
	// BindAddress and Port to serve HTTPS on.
	BindAddress string
	Port        int
	// CertDir holds tls.crt and tls.key, the serving certificate the APIService's caBundle
	// vouches for (reloaded when they change). Empty: a self-signed one made in memory at start,
	// which only an APIService with insecureSkipTLSVerify accepts.
	CertDir string
	// Kubeconfig is the client configuration for the delegated authentication (TokenReview, the
	// requestheader CA in kube-system/extension-apiserver-authentication) and authorization
	// (SubjectAccessReview), and for the server's own reads. Empty: in-cluster.
	Kubeconfig string
}

// Server is the custom metrics API server.
type Server struct {
	adapter *basecmd.AdapterBase
}

// NewServer builds the server for p; it serves once Start is called.
func NewServer(o ServerOptions, p provider.CustomMetricsProvider) (*Server, error) {
	a := &basecmd.AdapterBase{Name: "tcpgateway-custom-metrics", RemoteKubeConfigFile: o.Kubeconfig,
		// Its own flag set: the library's flags are set from ServerOptions, never from the
		// manager's command line.
		FlagSet: pflag.NewFlagSet("custom-metrics", pflag.ContinueOnError)}
	a.InstallFlags()
	s := a.CustomMetricsAdapterServerOptions
	s.SecureServing.BindPort = o.Port
	if o.BindAddress != "" {
		ip := net.ParseIP(o.BindAddress)
		if ip == nil {
			return nil, fmt.Errorf("custom metrics bind address %q is not an IP address", o.BindAddress)
		}
		s.SecureServing.BindAddress = ip
	}
	// The library's default writes a self-signed certificate under the working directory; the
	// manager's file system is read-only, so an empty folder keeps it in memory.
	s.SecureServing.ServerCert.CertDirectory = ""
	if o.CertDir != "" {
		s.SecureServing.ServerCert.CertKey.CertFile = filepath.Join(o.CertDir, "tls.crt")
		s.SecureServing.ServerCert.CertKey.KeyFile = filepath.Join(o.CertDir, "tls.key")
	}
	s.Authentication.RemoteKubeConfigFile = o.Kubeconfig
	s.Authorization.RemoteKubeConfigFile = o.Kubeconfig
	a.WithCustomMetrics(p)
	if _, err := a.Server(); err != nil {
		return nil, fmt.Errorf("while building the custom metrics API server: %w", err)
	}
	return &Server{adapter: a}, nil
}

// Start serves until ctx ends (a controller-runtime Runnable).
func (s *Server) Start(ctx context.Context) error { return s.adapter.Run(ctx) }

// NeedLeaderElection: every replica of the manager serves, leader or not; the aggregator may
// reach any of them through the Service.
func (s *Server) NeedLeaderElection() bool { return false }
