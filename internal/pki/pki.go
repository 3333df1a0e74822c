// Package pki owns the cluster's public-key infrastructure on disk: kubeadm's three CAs, the leaf
// certificates signed by them, the service-account key pair, their validation when they already
// exist, the expiry report of `certs check-expiration` and the renewal of leaf and kubeconfig client
// certificates. It keeps kubeadm's file names, identities, key usages and validity rules so that
// tools written for a kubeadm node work unchanged, and it is the only place that signs certificates
// (the kubeconfig package asks it for client certificates).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// CertificateBackdate is subtracted from "now" for NotBefore, as kubeadm does, so that a node whose
// clock is slightly behind the one that issued the certificate still accepts it.
const CertificateBackdate = 5 * time.Minute

// File permissions. Private keys must not be readable by other users; certificates and the
// service-account public key are public by nature (kubeadm uses the same modes).
const (
	KeyFileMode  os.FileMode = 0o600
	CertFileMode os.FileMode = 0o644
	DirMode      os.FileMode = 0o755
)

// Options tune how the PKI functions act; the zero value is a real, parallel run that logs nowhere.
type Options struct {
	// Files writes the PKI's files; nil is the disk, reporting on Log. A dry-run writer
	// (fsutil.NewDryRun) writes nothing and also skips generating keys nobody would see.
	Files fsutil.Writer
	// Log receives kubeadm-style progress lines ("[certs] ..."). nil discards them.
	Log io.Writer
	// Now is the clock; nil means time.Now. Tests inject a fixed clock for deterministic output.
	Now func() time.Time
	// Serial generates keys one after another instead of concurrently: the benchmark baseline,
	// and a way to keep CPU usage to one core.
	Serial bool
}

// Writer is o.Files, or the disk writer reporting on Log.
func (o Options) Writer() fsutil.Writer { return fsutil.OrDisk(o.Files, o.Log) }

func (o Options) dryRun() bool { return o.Writer().DryRun() }

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) log() io.Writer {
	if o.Log != nil {
		return o.Log
	}
	return io.Discard
}

func (o Options) logf(format string, args ...any) {
	fmt.Fprintf(o.log(), format+"\n", args...)
}

// GenerateKey creates a private key for one of kubeadm's encryptionAlgorithm names.
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case config.AlgorithmRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case config.AlgorithmRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case config.AlgorithmRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case config.AlgorithmECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case config.AlgorithmECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		return nil, fmt.Errorf("unknown encryptionAlgorithm %q: use one of %s, %s, %s, %s, %s", alg,
			config.AlgorithmRSA2048, config.AlgorithmRSA3072, config.AlgorithmRSA4096,
			config.AlgorithmECDSAP256, config.AlgorithmECDSAP384)
	}
}

// CertConfig describes a certificate to issue.
type CertConfig struct {
	CommonName   string
	Organization []string
	AltNames     certutil.AltNames
	Usages       []x509.ExtKeyUsage
	NotBefore    time.Time
	NotAfter     time.Time
}

// randomSerial returns a uniformly random serial in [1, 2^63-1), the range kubeadm uses: positive,
// non-zero and at most 63 bits so that every X.509 implementation accepts it.
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt64-1))
	if err != nil {
		return nil, fmt.Errorf("generating certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// NewSelfSignedCA issues a self-signed CA certificate. Its DNS SAN is its CN, as kubeadm's CAs
// carry one.
func NewSelfSignedCA(cfg CertConfig, key crypto.Signer) (*x509.Certificate, error) {
	if cfg.CommonName == "" {
		return nil, errors.New("a CA certificate needs a common name")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cfg.CommonName, Organization: cfg.Organization},
		DNSNames:              []string{cfg.CommonName},
		NotBefore:             cfg.NotBefore.UTC(),
		NotAfter:              cfg.NotAfter.UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing CA certificate %s: %w", cfg.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// NewSignedCert issues a leaf certificate for key, signed by ca/caKey.
func NewSignedCert(cfg CertConfig, key crypto.Signer, ca *x509.Certificate, caKey crypto.Signer) (*x509.Certificate, error) {
	if cfg.CommonName == "" {
		return nil, errors.New("a certificate needs a common name")
	}
	if len(cfg.Usages) == 0 {
		return nil, fmt.Errorf("certificate %s: at least one extended key usage is required", cfg.CommonName)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cfg.CommonName, Organization: cfg.Organization},
		DNSNames:              cfg.AltNames.DNSNames,
		IPAddresses:           cfg.AltNames.IPs,
		NotBefore:             cfg.NotBefore.UTC(),
		NotAfter:              cfg.NotAfter.UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           cfg.Usages,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", cfg.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// PublicKeyPin is kubeadm's CA pin for join's --discovery-token-ca-cert-hash:
// "sha256:" + hex(SHA-256(SubjectPublicKeyInfo)), computed by kubeadm's own pubkeypin.Hash so that
// init, token create and join print and check exactly kubeadm's pin. That package is the one
// k8s.io/kubernetes/cmd/... import outside internal/bundle: it and its errors package depend on
// the standard library only, so it adds nothing of the bundle's weight. Its Set (Allow,
// CheckAny) is not used: join needs to know which CA matched, and says which pin the cluster
// has when none does (discovery.CheckPins).
func PublicKeyPin(cert *x509.Certificate) string { return pubkeypin.Hash(cert) }

// EncodeCertPEM and EncodeKeyPEM give the on-disk (and kubeconfig-embedded) forms.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: cert.Raw})
}

func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	return keyutil.MarshalPrivateKeyToPEM(key)
}

// EncodePublicKeyPEM encodes a public key as PKIX "PUBLIC KEY", the form of sa.pub.
func EncodePublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: keyutil.PublicKeyBlockType, Bytes: der}), nil
}

// ParseCertPEM returns the first certificate of a PEM bundle.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	certs, err := certutil.ParseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseKeyPEM parses an RSA or ECDSA private key (PKCS#1, SEC 1 or PKCS#8), so that keys an
// operator brings from elsewhere are accepted as well as our own.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	k, err := keyutil.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

// ParsePublicKeyPEM parses the first public key of a PEM file such as sa.pub.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	keys, err := keyutil.ParsePublicKeysPEM(data)
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// ReadCert and ReadKey load one PEM file, with the path in every error.
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func ReadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// publicKeysEqual compares public keys through the Equal method every stdlib key type has.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// LoadCA loads the cluster CA (ca.crt and ca.key) from the configured certificates dir. It fails
// with a message saying what to do when either file is missing, since every caller needs to sign.
func LoadCA(p paths.Paths, cfg *config.Config) (*x509.Certificate, crypto.Signer, error) {
	dir := p.CertDir(cfg.Cluster.CertificatesDir)
	return loadCAPair(dir, "ca")
}

func loadCAPair(dir, base string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	cert, err := ReadCert(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("CA certificate %s not found: create it first (kubestrap init phase certs %s)", certPath, caPhaseName(base))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	key, err := ReadKey(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("CA key %s not found (external CA mode): certificates signed by %s must be provided by the operator", keyPath, certPath)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, nil, fmt.Errorf("%s does not belong to %s", keyPath, certPath)
	}
	return cert, key, nil
}

func caPhaseName(base string) string {
	if base == "etcd/ca" {
		return "etcd-ca"
	}
	return base
}

// File is one pending file write.
type File struct {
	Path string
	Data []byte
	Perm os.FileMode
}

// WriteFiles writes each file through o.Files. The writes are independent, so a parallel run does
// them concurrently: once keys are ECDSA, the fsyncs dominate the cost of a PKI. A dry run prints
// them one after another, in kubeadm's order.
func WriteFiles(files []File, o Options) error {
	w := o.Writer()
	if o.Serial || len(files) < 2 || w.DryRun() {
		for _, f := range files {
			if err := w.WriteFile(f.Path, f.Data, f.Perm); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(files))
	done := make(chan struct{})
	for i, f := range files {
		go func() {
			errs[i] = w.WriteFile(f.Path, f.Data, f.Perm)
			done <- struct{}{}
		}()
	}
	for range files {
		<-done
	}
	return errors.Join(errs...)
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}
