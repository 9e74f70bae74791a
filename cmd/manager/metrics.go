package main

import (
	"crypto/tls"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// metricsOptions is how the manager serves its metrics. Secure (the default): HTTPS, and every
// scrape authenticated with a TokenReview of its bearer token and authorized with a
// SubjectAccessReview for `get` on the non-resource URL /metrics, as kubebuilder v4 scaffolds
// do (the operator's ServiceAccount needs create on tokenreviews and subjectaccessreviews; a
// scraper needs a role such as the chart's <fullname>-metrics-reader). The certificate is
// tls.crt and tls.key in certDir, reloaded when they change, or, with no certDir, a
// self-signed one made at start. Not secure: plain HTTP, unauthenticated, for a bind address
// only the pod reaches.
func metricsOptions(addr string, secure bool, certDir string) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if !secure {
		return o
	}
	o.SecureServing = true
	o.CertDir = certDir
	o.FilterProvider = filters.WithAuthenticationAndAuthorization
	// HTTP/2 off, as kubebuilder does: its rapid-reset and stream-cancellation CVEs
	// (CVE-2023-44487, CVE-2023-39325) and nothing a scraper needs.
	o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	return o
}
