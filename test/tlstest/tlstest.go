// Package tlstest is the one certificate factory for tests: a throwaway certificate authority,
// certificates for loopback addresses with known serial numbers (or expired, for other names,
// for clients: Leaf), and files laid out as the kubelet lays out a Secret volume (so that a
// rotation is the atomic swap of a ..data symlink).
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority for one test.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, what a client trusts (a -ca file).
	PEM []byte
}

// NewCA makes a CA valid for a day.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Pool is a pool holding only the CA, for tls.Config.RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Pair is a server certificate and its key.
type Pair struct {
	CertPEM, KeyPEM []byte
	Leaf            *x509.Certificate
}

// Issue makes a server certificate with the given serial number for localhost, 127.0.0.1
// and ::1, valid for a day.
func (ca *CA) Issue(serial int64) (Pair, error) {
	return ca.IssueLeaf(Leaf{Serial: serial})
}

// Leaf describes a certificate for IssueLeaf; a zero field takes Issue's default.
type Leaf struct {
	// Serial is the serial number; 0: one unique within the process.
	Serial int64
	// NotBefore and NotAfter bound the validity; zero: from a minute ago for a day.
	NotBefore, NotAfter time.Time
	// Hosts are the DNS names and IP addresses the certificate is for; nil: localhost,
	// 127.0.0.1 and ::1 (a wrong-name certificate gives other names).
	Hosts []string
	// Client makes a client certificate (client authentication, no hosts) instead of a
	// server certificate.
	Client bool
}

var lastSerial atomic.Int64

// IssueLeaf makes the certificate l describes, signed by the CA.
func (ca *CA) IssueLeaf(l Leaf) (Pair, error) {
	if l.Serial == 0 {
		l.Serial = 1_000_000 + lastSerial.Add(1) // clear of the small serials tests choose
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Minute)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(24 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(l.Serial),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("tcpgateway test %d", l.Serial)},
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	switch {
	case l.Client:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case l.Hosts == nil:
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	default:
		for _, h := range l.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Pair{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Leaf:    leaf,
	}, nil
}

// TLSCertificate is the pair for tls.Config.Certificates.
func (p Pair) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(p.CertPEM, p.KeyPEM)
}

// MustCA is NewCA failing t on error.
func MustCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// MustIssue is IssueLeaf failing t on error.
func (ca *CA) MustIssue(t testing.TB, l Leaf) Pair {
	t.Helper()
	p, err := ca.IssueLeaf(l)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Serving is a CA and a server certificate of serial 1 from it in a new Secret-like
// directory: what a gateway's clients listener is configured with.
func Serving(t testing.TB, caName string) (*CA, *SecretDir) {
	t.Helper()
	ca := MustCA(t, caName)
	dir, err := NewSecretDir(t.TempDir(), ca.MustIssue(t, Leaf{Serial: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return ca, dir
}

// ClientConfig trusts only the CA.
func (ca *CA) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
}

// SecretDir is a directory laid out as the kubelet lays out a kubernetes.io/tls Secret
// volume: tls.crt and tls.key are symlinks through ..data to a timestamped directory.
type SecretDir struct {
	Dir string
	gen int
}

// Names of the files in a kubernetes.io/tls Secret.
const (
	CertName = "tls.crt"
	KeyName  = "tls.key"
)

// NewSecretDir writes p into a new Secret-like directory under parent.
func NewSecretDir(parent string, p Pair) (*SecretDir, error) {
	d := &SecretDir{Dir: filepath.Join(parent, "tls")}
	if err := os.Mkdir(d.Dir, 0o755); err != nil {
		return nil, err
	}
	for _, name := range []string{CertName, KeyName} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.Dir, name)); err != nil {
			return nil, err
		}
	}
	return d, d.Write(p.CertPEM, p.KeyPEM)
}

// CertFile and KeyFile are the paths a gateway is configured with.
func (d *SecretDir) CertFile() string { return filepath.Join(d.Dir, CertName) }
func (d *SecretDir) KeyFile() string  { return filepath.Join(d.Dir, KeyName) }

// Write replaces both files at once, as the kubelet does: a new directory, then ..data swapped
// to it by a rename.
func (d *SecretDir) Write(certPEM, keyPEM []byte) error {
	d.gen++
	ts := filepath.Join(d.Dir, fmt.Sprintf("..2026_12_04_%06d", d.gen))
	if err := os.Mkdir(ts, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ts, CertName), certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ts, KeyName), keyPEM, 0o600); err != nil {
		return err
	}
	tmp := filepath.Join(d.Dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d.Dir, "..data"))
}
