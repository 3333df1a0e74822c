package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// RenewNames lists what `certs renew` accepts for a configuration, sorted as kubeadm lists them:
// every leaf certificate plus the kubeconfig files with an embedded client certificate. A nil
// configuration means a local etcd (the full list, for building the command tree).
func RenewNames(cfg *config.Config) []string {
	var out []string
	for _, s := range static {
		if s.IsCA() || (s.Etcd && cfg != nil && !cfg.LocalEtcd()) {
			continue
		}
		out = append(out, s.Name)
	}
	for _, k := range renewableKubeconfigs {
		out = append(out, k.file)
	}
	sort.Strings(out)
	return out
}

// IsCAName reports whether name is one of the CAs' phase names (which renewal refuses).
func IsCAName(name string) bool {
	s, ok := specByName(static, name)
	return ok && s.IsCA()
}

// RenewLongName is the human description of a renewable name (kubeadm's), for help texts.
func RenewLongName(name string) string {
	if s, ok := specByName(static, name); ok {
		return s.LongName
	}
	for _, k := range renewableKubeconfigs {
		if k.file == name {
			return k.longName
		}
	}
	return ""
}

// renewItem is one certificate to renew.
type renewItem struct {
	name, longName string
	// For a PKI leaf: the files. For a kubeconfig: path only.
	certPath, keyPath string
	kubeconfig        *embeddedClient
	current           *x509.Certificate
	caCert            *x509.Certificate
	caKey             crypto.Signer
	// For a PKI leaf: the new pair, committed together by writePair. For a kubeconfig: the file.
	certPEM, keyPEM []byte
	files           []File
}

// Renew issues new certificates for the named leaf certificates and kubeconfig client
// certificates (nil or "all" = every one of RenewNames). Each keeps the subject, SANs and extended
// key usages of the certificate it replaces, gets a new key in the configured algorithm, a new
// serial and a new validity period, and is signed by the local CA. CAs are never renewed: a new CA
// would invalidate every credential issued by the old one. A missing certificate is reported as
// "MISSING!" and one whose CA key is absent (external CA) is skipped, as kubeadm does.
func Renew(cfg *config.Config, p paths.Paths, names []string, o Options) error {
	all := RenewNames(cfg)
	renewAll := len(names) == 0 || (len(names) == 1 && names[0] == "all")
	if renewAll {
		names = all
	}
	for _, n := range names {
		if slices.Contains(all, n) {
			continue
		}
		if s, ok := specByName(static, n); ok && s.IsCA() {
			return fmt.Errorf("%s is a CA: CAs are not renewed, only the certificates they sign (%s)", n, strings.Join(all, ", "))
		}
		if s, ok := specByName(static, n); ok && s.Etcd {
			return fmt.Errorf("certificate %q is not used with external etcd (etcd.external is set)", n)
		}
		return fmt.Errorf("unknown certificate %q: valid names are %s", n, strings.Join(all, ", "))
	}
	dir := p.CertDir(cfg.Cluster.CertificatesDir)
	now := o.now()
	alg := KeyAlgorithm(cfg)
	if err := ValidateAlgorithm(alg); err != nil {
		return err
	}

	// Read everything first, so that a broken file stops the run before anything is rewritten.
	type caPair struct {
		cert *x509.Certificate
		key  crypto.Signer // nil: external CA
	}
	cas := map[string]*caPair{}
	loadCA := func(name string) (*caPair, error) {
		if c, ok := cas[name]; ok {
			return c, nil
		}
		s, _ := specByName(static, name)
		certPath, keyPath := filepath.Join(dir, s.CertFile()), filepath.Join(dir, s.KeyFile())
		cert, err := ReadCert(certPath)
		if err != nil {
			return nil, fmt.Errorf("loading the %s CA: %w", name, err)
		}
		c := &caPair{cert: cert}
		keyOK, err := fileExists(keyPath)
		if err != nil {
			return nil, err
		}
		if keyOK {
			if c.key, err = ReadKey(keyPath); err != nil {
				return nil, err
			}
			if !publicKeysEqual(cert.PublicKey, c.key.Public()) {
				return nil, fmt.Errorf("%s does not match %s: they are not one key pair", keyPath, certPath)
			}
		}
		cas[name] = c
		return c, nil
	}

	var items []*renewItem
	var msgs []string // in order; printed before writing
	var errs []error
	for _, n := range names {
		it := &renewItem{name: n, longName: RenewLongName(n)}
		caName := CA
		if s, ok := specByName(static, n); ok {
			caName = s.CAName
			it.certPath, it.keyPath = filepath.Join(dir, s.CertFile()), filepath.Join(dir, s.KeyFile())
			// A renewal a crash interrupted is finished (or discarded) first, so that what is
			// read below is a whole pair.
			msg, err := recoverPair(o.Writer(), it.certPath, it.keyPath)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if msg != "" {
				o.logf("%s", msg)
			}
			cert, err := ReadCert(it.certPath)
			if errors.Is(err, os.ErrNotExist) {
				msgs = append(msgs, "MISSING! "+it.longName)
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			it.current = cert
			if err := checkLeafKey(it.certPath, it.keyPath, cert, n); err != nil {
				// Renewing replaces both files, which mends the pair; it is still said, never
				// passed over.
				o.logf("[certs] WARNING: %v; renewing %s replaces both files", err, n)
			}
		} else {
			it.certPath = p.Kubeconfig(n)
			ec, err := readEmbeddedClient(it.certPath)
			if errors.Is(err, os.ErrNotExist) {
				msgs = append(msgs, "MISSING! "+it.longName)
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			it.kubeconfig, it.current = ec, ec.cert
		}
		ca, err := loadCA(caName)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ca.key == nil {
			caBase, _ := specByName(static, caName)
			msgs = append(msgs, fmt.Sprintf("Detected external %s, %s can't be renewed", caBase.BaseName, it.longName))
			continue
		}
		it.caCert, it.caKey = ca.cert, ca.key
		items = append(items, it)
		msgs = append(msgs, it.longName+" renewed")
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	run := func(it *renewItem) error { return it.renew(alg, now, cfg.CertValidity()) }
	genErrs := make([]error, len(items))
	if o.Serial {
		for i, it := range items {
			genErrs[i] = run(it)
		}
	} else {
		var wg sync.WaitGroup
		for i, it := range items {
			wg.Add(1)
			go func() {
				defer wg.Done()
				genErrs[i] = run(it)
			}()
		}
		wg.Wait()
	}
	if err := errors.Join(genErrs...); err != nil {
		return err
	}

	var files []File
	for _, it := range items {
		files = append(files, it.files...)
	}
	if err := WriteFiles(files, o); err != nil {
		return err
	}
	// Pairs one at a time: each commit is ordered (key, then certificate), and a failure stops
	// before the next pair is touched.
	for _, it := range items {
		if it.kubeconfig != nil {
			continue
		}
		if o.dryRun() {
			// What the pair becomes, not the staging steps that keep it whole.
			for _, f := range []File{{it.keyPath, it.keyPEM, KeyFileMode}, {it.certPath, it.certPEM, CertFileMode}} {
				if err := o.Writer().WriteFile(f.Path, f.Data, f.Perm); err != nil {
					return err
				}
			}
			continue
		}
		if err := writePair(o.Writer(), it.certPath, it.keyPath, it.certPEM, it.keyPEM); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		if o.dryRun() && strings.HasSuffix(m, " renewed") {
			m = "[dryrun] Would renew the " + strings.TrimSuffix(m, " renewed")
		}
		o.logf("%s", m)
	}
	if renewAll && !o.dryRun() {
		o.logf("\nDone renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates.")
	}
	return nil
}

// renew signs a replacement for it.current, copying its identity and SANs.
func (it *renewItem) renew(alg string, now time.Time, validity time.Duration) error {
	key, err := GenerateKey(alg)
	if err != nil {
		return err
	}
	cur := it.current
	cc := CertConfig{
		CommonName:   cur.Subject.CommonName,
		Organization: cur.Subject.Organization,
		AltNames:     certutil.AltNames{DNSNames: cur.DNSNames, IPs: cur.IPAddresses},
		Usages:       cur.ExtKeyUsage,
		NotBefore:    now.Add(-CertificateBackdate),
		NotAfter:     now.Add(validity),
	}
	cert, err := NewSignedCert(cc, key, it.caCert, it.caKey)
	if err != nil {
		return fmt.Errorf("renewing %s: %w", it.name, err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	if it.kubeconfig == nil {
		it.certPEM, it.keyPEM = EncodeCertPEM(cert), keyPEM
		return nil
	}
	it.kubeconfig.authInfo.ClientCertificateData = EncodeCertPEM(cert)
	it.kubeconfig.authInfo.ClientKeyData = keyPEM
	data, err := clientcmd.Write(*it.kubeconfig.config)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", it.certPath, err)
	}
	it.files = []File{{Path: it.certPath, Data: data, Perm: KeyFileMode}}
	return nil
}

// checkLeafKey reports a key file that does not belong to its certificate; a missing key is left
// to the callers (an external CA's leaves may come without one).
func checkLeafKey(certPath, keyPath string, cert *x509.Certificate, renewName string) error {
	key, err := ReadKey(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return mismatchError(certPath, keyPath, renewName)
	}
	return nil
}
