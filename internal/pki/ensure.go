package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// KeyAlgorithm is the configured encryptionAlgorithm; an empty value (a configuration that was
// not defaulted) means kubestrap's default.
func KeyAlgorithm(cfg *config.Config) string {
	if a := cfg.Cluster.EncryptionAlgorithm; a != "" {
		return a
	}
	return config.DefaultEncryptionAlgorithm
}

// certItem is one certificate of a run: what is on disk, what to do, and the material a leaf
// signs with.
type certItem struct {
	spec              CertSpec
	certPath, keyPath string
	generate          bool
	cert              *x509.Certificate
	key               crypto.Signer // nil for an external CA (certificate without key)
	ca                *certItem     // the signer, for leaves
	ready             chan struct{} // closed once cert/key are final (CAs being generated)
	genErr            error
	certPEM, keyPEM   []byte
}

// saItem is the service-account key pair.
type saItem struct {
	keyPath, pubPath string
	generate         bool // a new key
	writePub         bool // sa.pub is (re)derived from the key
	key              crypto.Signer
	keyPEM, pubPEM   []byte
}

// selectNames resolves the requested phase names (nil or "all" = every name of the configuration).
func selectNames(cfg *config.Config, names []string) ([]string, error) {
	all := CertNames(cfg)
	if len(names) == 0 || (len(names) == 1 && names[0] == "all") {
		return all, nil
	}
	var out []string
	for _, n := range names {
		if slices.Contains(all, n) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
			continue
		}
		if s, ok := specByName(static, n); ok && s.Etcd {
			return nil, fmt.Errorf("certificate %q is not used with external etcd (etcd.external is set)", n)
		}
		return nil, fmt.Errorf("unknown certificate %q: valid names are %s", n, strings.Join(all, ", "))
	}
	// Keep kubeadm's order whatever order the caller used, so CAs come before their leaves.
	slices.SortFunc(out, func(a, b string) int { return slices.Index(all, a) - slices.Index(all, b) })
	return out, nil
}

// EnsureCerts makes sure the named certificates (nil = all of CertNames) exist in the configured
// certificates dir. Existing valid files are kept untouched; a file that conflicts with the
// configuration is an error naming it and the difference. Every existing file of the requested set
// is read and validated before anything is generated or written, so a failing run leaves the
// directory as it was.
func EnsureCerts(cfg *config.Config, p paths.Paths, names []string, o Options) error {
	selected, err := selectNames(cfg, names)
	if err != nil {
		return err
	}
	dir := p.CertDir(cfg.Cluster.CertificatesDir)
	specs, err := certSpecs(cfg, func(name, msg string) {
		if slices.Contains(selected, name) {
			o.logf("%s", msg)
		}
	})
	if err != nil {
		return err
	}
	now := o.now()
	alg := KeyAlgorithm(cfg)
	if err := ValidateAlgorithm(alg); err != nil {
		return err
	}

	// Phase 1: read and validate everything on disk.
	var errs []error
	cas := map[string]*certItem{}
	badCA := map[string]bool{} // CAs whose error is already reported
	var items []*certItem
	newItem := func(s CertSpec) *certItem {
		return &certItem{spec: s, certPath: filepath.Join(dir, s.CertFile()), keyPath: filepath.Join(dir, s.KeyFile())}
	}
	// caFor returns the signer of a leaf: the CA of this run, or one loaded from disk.
	caFor := func(name string) (*certItem, error) {
		if it, ok := cas[name]; ok {
			return it, nil
		}
		s, _ := specByName(specs, name)
		it := newItem(s)
		if err := inspectCA(it, now); err != nil {
			return nil, err
		}
		if it.generate && !o.dryRun() {
			return nil, fmt.Errorf("%s not found: create the %s CA first (kubestrap init phase certs %s)", it.certPath, name, name)
		}
		// In a dry run, phases called one by one find no CA on disk because the "ca" phase only
		// pretended to write it; its leaves are then reported as they would be generated.
		cas[name] = it
		return it, nil
	}
	var sa *saItem
	for _, name := range selected {
		if name == ServiceAccount {
			s, err := inspectSA(dir)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			sa = s
			continue
		}
		s, _ := specByName(specs, name)
		it := newItem(s)
		if s.IsCA() {
			if err := inspectCA(it, now); err != nil {
				errs = append(errs, err)
				badCA[name] = true
				continue
			}
			if it.generate {
				it.ready = make(chan struct{})
			}
			cas[name] = it
			items = append(items, it)
			continue
		}
		if badCA[s.CAName] {
			continue
		}
		ca, err := caFor(s.CAName)
		if err != nil {
			errs = append(errs, err)
			badCA[s.CAName] = true
			continue
		}
		it.ca = ca
		if err := inspectLeaf(it, now); err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, it)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Phase 2: generate what is missing. Dry runs skip the (possibly slow) key generation: they
	// only report what would be written.
	if !o.dryRun() {
		if err := generateAll(items, sa, alg, now, cfg, o.Serial); err != nil {
			return err
		}
	}

	// Phase 3: report in kubeadm's order and write.
	var files []File
	for _, it := range items {
		if !it.generate {
			if it.key == nil {
				o.logf("[certs] Using existing %s certificate (external CA: %s is not present)", it.spec.BaseName, filepath.Base(it.keyPath))
			} else {
				o.logf("[certs] Using existing %s certificate and key", it.spec.BaseName)
			}
			continue
		}
		o.logf("[certs] Generating %q certificate and key", it.spec.BaseName)
		if !it.spec.IsCA() && (len(it.spec.AltNames.DNSNames) > 0 || len(it.spec.AltNames.IPs) > 0) {
			o.logf("[certs] %s serving cert is signed for DNS names %v and IPs %v", it.spec.BaseName, it.spec.AltNames.DNSNames, ipStrings(it.spec.AltNames.IPs))
		}
		files = append(files,
			File{Path: it.keyPath, Data: it.keyPEM, Perm: KeyFileMode},
			File{Path: it.certPath, Data: it.certPEM, Perm: CertFileMode})
	}
	if sa != nil {
		switch {
		case sa.generate:
			o.logf("[certs] Generating %q key and public key", ServiceAccount)
			files = append(files, File{Path: sa.keyPath, Data: sa.keyPEM, Perm: KeyFileMode})
		default:
			o.logf("[certs] Using existing %s key", ServiceAccount)
		}
		if sa.writePub {
			files = append(files, File{Path: sa.pubPath, Data: sa.pubPEM, Perm: CertFileMode})
		}
	}
	if err := WriteFiles(files, o); err != nil {
		return err
	}
	if len(names) == 0 && !o.dryRun() {
		o.logf("[certs] Valid certificates and keys now exist in %q", dir)
	}
	return nil
}

// ValidateAlgorithm checks an encryptionAlgorithm name without generating a key.
func ValidateAlgorithm(alg string) error {
	switch alg {
	case config.AlgorithmRSA2048, config.AlgorithmRSA3072, config.AlgorithmRSA4096, config.AlgorithmECDSAP256, config.AlgorithmECDSAP384:
		return nil
	}
	_, err := GenerateKey(alg) // fails with the list of valid names
	return err
}

// generateAll creates keys and certificates. In parallel mode every missing key is generated
// concurrently; a leaf waits only for its own CA, so RSA key generation (the slow part) of leaves
// overlaps with that of CAs and of each other.
func generateAll(items []*certItem, sa *saItem, alg string, now time.Time, cfg *config.Config, serial bool) error {
	var jobs []func() error
	for _, it := range items {
		if it.generate {
			jobs = append(jobs, func() error { return it.run(alg, now, cfg) })
		}
	}
	if sa != nil && (sa.generate || sa.writePub) {
		jobs = append(jobs, func() error { return sa.run(alg) })
	}
	errs := make([]error, len(jobs))
	if serial {
		// items are in kubeadm's order, which puts every CA before its leaves.
		for i, j := range jobs {
			errs[i] = j()
		}
	} else {
		var wg sync.WaitGroup
		for i, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = j()
			}()
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

func (it *certItem) run(alg string, now time.Time, cfg *config.Config) (err error) {
	if it.ready != nil {
		defer close(it.ready)
	}
	defer func() { it.genErr = err }()
	var ca *certItem
	if !it.spec.IsCA() {
		ca = it.ca
		if ca.ready != nil {
			<-ca.ready
		}
		if ca.genErr != nil {
			// Reported by the CA itself; nothing to add.
			return nil
		}
	}
	key, err := GenerateKey(alg)
	if err != nil {
		return fmt.Errorf("%s: %w", it.spec.Name, err)
	}
	cc := CertConfig{
		CommonName:   it.spec.CommonName,
		Organization: it.spec.Organization,
		AltNames:     it.spec.AltNames,
		Usages:       it.spec.Usages,
		NotBefore:    now.Add(-CertificateBackdate),
		NotAfter:     now.Add(cfg.CertValidity()),
	}
	var cert *x509.Certificate
	if it.spec.IsCA() {
		cc.NotAfter = now.Add(cfg.CAValidity())
		cert, err = NewSelfSignedCA(cc, key)
	} else {
		cert, err = NewSignedCert(cc, key, ca.cert, ca.key)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", it.spec.Name, err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return fmt.Errorf("%s: %w", it.spec.Name, err)
	}
	it.cert, it.key, it.certPEM, it.keyPEM = cert, key, EncodeCertPEM(cert), keyPEM
	return nil
}

func (sa *saItem) run(alg string) error {
	if sa.generate {
		key, err := GenerateKey(alg)
		if err != nil {
			return fmt.Errorf("sa: %w", err)
		}
		keyPEM, err := EncodeKeyPEM(key)
		if err != nil {
			return fmt.Errorf("sa: %w", err)
		}
		sa.key, sa.keyPEM = key, keyPEM
	}
	pub, err := EncodePublicKeyPEM(sa.key.Public())
	if err != nil {
		return fmt.Errorf("sa: %w", err)
	}
	sa.pubPEM = pub
	return nil
}

// pairState reads which of a cert/key pair exist.
func pairState(certPath, keyPath string) (certOK, keyOK bool, err error) {
	if certOK, err = fileExists(certPath); err != nil {
		return
	}
	keyOK, err = fileExists(keyPath)
	return
}

// inspectCA decides what to do with a CA: generate it, reuse it, or reuse its certificate alone
// (external CA mode: the operator keeps the key elsewhere and provides every leaf).
func inspectCA(it *certItem, now time.Time) error {
	certOK, keyOK, err := pairState(it.certPath, it.keyPath)
	if err != nil {
		return err
	}
	switch {
	case !certOK && !keyOK:
		it.generate = true
		return nil
	case !certOK:
		return fmt.Errorf("%s exists but %s does not: restore the certificate, or remove the key to create a new CA", it.keyPath, it.certPath)
	}
	cert, err := ReadCert(it.certPath)
	if err != nil {
		return err
	}
	if !cert.IsCA {
		return fmt.Errorf("%s is not a CA certificate (basic constraints CA:FALSE)", it.certPath)
	}
	if err := checkPeriod(it.certPath, cert, now); err != nil {
		return fmt.Errorf("%w: kubestrap does not renew CAs", err)
	}
	it.cert = cert
	if !keyOK {
		return nil
	}
	key, err := ReadKey(it.keyPath)
	if err != nil {
		return err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return fmt.Errorf("%s does not match %s: they are not one key pair", it.keyPath, it.certPath)
	}
	it.key = key
	return nil
}

// inspectLeaf decides whether a leaf is generated or kept, and validates a kept one against its CA
// and the configuration.
func inspectLeaf(it *certItem, now time.Time) error {
	certOK, keyOK, err := pairState(it.certPath, it.keyPath)
	if err != nil {
		return err
	}
	ca := it.ca
	switch {
	case !certOK && !keyOK:
		if ca.key == nil && !ca.generate {
			return fmt.Errorf("%s is missing and %s is not present (external CA mode): provide %s and %s signed by %s",
				it.certPath, ca.keyPath, it.certPath, it.keyPath, ca.certPath)
		}
		it.generate = true
		return nil
	case !certOK:
		return fmt.Errorf("%s exists but %s does not: restore the certificate, or remove the key to generate a new pair", it.keyPath, it.certPath)
	case !keyOK:
		return fmt.Errorf("%s exists but %s does not: restore the key, or remove the certificate to generate a new pair", it.certPath, it.keyPath)
	}
	if ca.generate {
		return fmt.Errorf("%s exists but its CA %s does not, so it cannot chain to the CA about to be generated: remove %s and %s, or restore the CA",
			it.certPath, ca.certPath, it.certPath, it.keyPath)
	}
	cert, err := ReadCert(it.certPath)
	if err != nil {
		return err
	}
	key, err := ReadKey(it.keyPath)
	if err != nil {
		return err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return mismatchError(it.certPath, it.keyPath, it.spec.Name)
	}
	if err := verifyChain(it.certPath, cert, ca.certPath, ca.cert, now); err != nil {
		return err
	}
	if err := checkIdentity(it.certPath, cert, it.spec); err != nil {
		return err
	}
	it.cert, it.key = cert, key
	return nil
}

// checkPeriod rejects a certificate outside its validity period, with the dates.
func checkPeriod(path string, cert *x509.Certificate, now time.Time) error {
	if now.After(cert.NotAfter) {
		return fmt.Errorf("%s expired on %s", path, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("%s is not valid before %s (check the clock)", path, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// verifyChain checks that cert is signed by ca and currently valid, as a TLS peer would.
func verifyChain(path string, cert *x509.Certificate, caPath string, ca *x509.Certificate, now time.Time) error {
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("%s is not signed by the CA %s: %w", path, caPath, err)
	}
	if err := checkPeriod(path, cert, now); err != nil {
		return fmt.Errorf("%w: renew it (kubestrap certs renew)", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%s does not verify against the CA %s: %w", path, caPath, err)
	}
	return nil
}

// checkIdentity compares an existing leaf with what the configuration asks for. Extra SANs are
// accepted (kubeadm keeps such a certificate: it still serves every configured name); a missing
// one would break clients, so it is an error that lists each missing name.
func checkIdentity(path string, cert *x509.Certificate, spec CertSpec) error {
	if cert.Subject.CommonName != spec.CommonName {
		return fmt.Errorf("%s: common name %q differs from the configuration's %q", path, cert.Subject.CommonName, spec.CommonName)
	}
	for _, u := range spec.Usages {
		if !slices.Contains(cert.ExtKeyUsage, u) {
			return fmt.Errorf("%s: extended key usage %s is missing", path, extKeyUsageName(u))
		}
	}
	if d := missingSANs(cert, spec.AltNames.DNSNames, spec.AltNames.IPs); d != "" {
		return fmt.Errorf("%s: SANs differ from the configuration: %s", path, d)
	}
	return nil
}

func missingSANs(cert *x509.Certificate, dns []string, ips []net.IP) string {
	var missing []string
	for _, d := range dns {
		if !slices.ContainsFunc(cert.DNSNames, func(c string) bool { return strings.EqualFold(c, d) }) {
			missing = append(missing, "missing DNS "+d)
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			missing = append(missing, "missing IP "+ip.String())
		}
	}
	return strings.Join(missing, ", ")
}

// inspectSA reuses an existing sa.key as kubeadm does; sa.pub is re-derived when absent, and an
// sa.pub that does not belong to sa.key is an error (the apiserver would reject its own tokens).
func inspectSA(dir string) (*saItem, error) {
	sa := &saItem{keyPath: filepath.Join(dir, SAKeyFile), pubPath: filepath.Join(dir, SAPubFile)}
	keyOK, err := fileExists(sa.keyPath)
	if err != nil {
		return nil, err
	}
	pubOK, err := fileExists(sa.pubPath)
	if err != nil {
		return nil, err
	}
	if !keyOK {
		if pubOK {
			return nil, fmt.Errorf("%s exists but %s does not: restore the key, or remove %s to generate a new pair", sa.pubPath, sa.keyPath, sa.pubPath)
		}
		sa.generate, sa.writePub = true, true
		return sa, nil
	}
	key, err := ReadKey(sa.keyPath)
	if err != nil {
		return nil, err
	}
	sa.key = key
	if !pubOK {
		sa.writePub = true
		return sa, nil
	}
	data, err := os.ReadFile(sa.pubPath)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sa.pubPath, err)
	}
	if !publicKeysEqual(pub, key.Public()) {
		return nil, fmt.Errorf("%s does not match %s: remove %s to derive it from the key", sa.pubPath, sa.keyPath, sa.pubPath)
	}
	return sa, nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "ServerAuth"
	case x509.ExtKeyUsageClientAuth:
		return "ClientAuth"
	}
	return fmt.Sprintf("%d", u)
}
