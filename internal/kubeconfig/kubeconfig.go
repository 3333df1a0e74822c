// Package kubeconfig owns the kubeconfig files of a control-plane node (admin.conf,
// super-admin.conf, kubelet.conf, controller-manager.conf, scheduler.conf, and kubestrap's
// csr-approver.conf): their identities and
// server URLs, the client certificates embedded in them (signed through the pki package by the
// cluster CA), the validation of existing files, and the builders for ad-hoc client-certificate
// and bootstrap-token kubeconfigs used by `kubeconfig user` and join. Files are encoded only
// through client-go's clientcmd, so they read exactly like kubeadm's.
package kubeconfig

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
)

// Phase names (`kubestrap init phase kubeconfig <name>`), kubeadm's.
const (
	Admin             = "admin"
	SuperAdmin        = "super-admin"
	Kubelet           = "kubelet"
	ControllerManager = "controller-manager"
	Scheduler         = "scheduler"
	// CSRApprover is kubestrap's own: the identity of the kubelet-serving CSR approver.
	CSRApprover = "csr-approver"
)

// CSRApproverUser is the approver's user name; its RBAC (package csrapprover) binds this user.
const CSRApproverUser = "kubestrap:csr-approver"

// Groups and users fixed by the RBAC that kubeadm (and kubestrap's init) sets up.
const (
	// ClusterAdminsGroup is bound to cluster-admin by init; unlike system:masters it can be
	// revoked, which is why admin.conf uses it and only super-admin.conf is in system:masters.
	ClusterAdminsGroup = "kubeadm:cluster-admins"
	MastersGroup       = "system:masters"
	NodesGroup         = "system:nodes"
	NodeUserPrefix     = "system:node:"
)

// spec is one kubeconfig file of the node.
type spec struct {
	name, file string
	user       func(cfg *config.Config) string
	orgs       []string
	// local files point at this node's apiserver rather than the control-plane endpoint: the
	// components must keep working when the load balancer in front of the control plane does not.
	local bool
}

var specs = []spec{
	{name: Admin, file: "admin.conf", user: fixed("kubernetes-admin"), orgs: []string{ClusterAdminsGroup}},
	{name: SuperAdmin, file: "super-admin.conf", user: fixed("kubernetes-super-admin"), orgs: []string{MastersGroup}},
	{name: Kubelet, file: "kubelet.conf", user: func(c *config.Config) string { return NodeUserPrefix + c.NodeName() }, orgs: []string{NodesGroup}, local: true},
	{name: ControllerManager, file: "controller-manager.conf", user: fixed("system:kube-controller-manager"), local: true},
	{name: Scheduler, file: "scheduler.conf", user: fixed("system:kube-scheduler"), local: true},
	{name: CSRApprover, file: "csr-approver.conf", user: fixed(CSRApproverUser), local: true},
}

func fixed(s string) func(*config.Config) string { return func(*config.Config) string { return s } }

// KubeconfigNames lists the phase names in kubeadm's order.
func KubeconfigNames() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	return out
}

// FileName maps a phase name to its file under /etc/kubernetes ("admin" → "admin.conf").
func FileName(name string) (string, error) {
	for _, s := range specs {
		if s.name == name {
			return s.file, nil
		}
	}
	return "", fmt.Errorf("unknown kubeconfig %q: valid names are %s", name, strings.Join(KubeconfigNames(), ", "))
}

// Identity is the user, groups and server of one kubeconfig file under a configuration.
type Identity struct {
	Name, File, User string
	Orgs             []string
	Server           string
}

// Identities resolves the files of a configuration, in kubeadm's order.
func Identities(cfg *config.Config) []Identity {
	out := make([]Identity, len(specs))
	for i, s := range specs {
		server := cfg.ControlPlaneURL()
		if s.local {
			server = cfg.LocalAPIServerURL()
		}
		out[i] = Identity{Name: s.name, File: s.file, User: s.user(cfg), Orgs: slices.Clone(s.orgs), Server: server}
	}
	return out
}

// ContextName is kubeadm's "<user>@<cluster>".
func ContextName(user, clusterName string) string { return user + "@" + clusterName }

// newConfig builds a single-cluster, single-user kubeconfig with the CA embedded.
func newConfig(server string, caPEM []byte, clusterName, user string, auth *clientcmdapi.AuthInfo) *clientcmdapi.Config {
	ctx := ContextName(user, clusterName)
	c := clientcmdapi.NewConfig()
	c.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	c.AuthInfos[user] = auth
	c.Contexts[ctx] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user}
	c.CurrentContext = ctx
	return c
}

// ClientConfig returns a kubeconfig for user (groups orgs) authenticating with a new client
// certificate signed by caCert/caKey, valid for validity from now, with a key of algorithm alg.
func ClientConfig(caCert *x509.Certificate, caKey crypto.Signer, server, clusterName, user string, orgs []string, validity time.Duration, alg string) (*clientcmdapi.Config, error) {
	return clientConfigAt(caCert, caKey, server, clusterName, user, orgs, validity, alg, time.Now())
}

func clientConfigAt(caCert *x509.Certificate, caKey crypto.Signer, server, clusterName, user string, orgs []string, validity time.Duration, alg string, now time.Time) (*clientcmdapi.Config, error) {
	if user == "" {
		return nil, errors.New("a client certificate needs a user name")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("validity period %s must be positive", validity)
	}
	key, err := pki.GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	cert, err := pki.NewSignedCert(pki.CertConfig{
		CommonName:   user,
		Organization: orgs,
		Usages:       []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:    now.Add(-pki.CertificateBackdate),
		NotAfter:     now.Add(validity),
	}, key, caCert, caKey)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return newConfig(server, pki.EncodeCertPEM(caCert), clusterName, user, &clientcmdapi.AuthInfo{
		ClientCertificateData: pki.EncodeCertPEM(cert),
		ClientKeyData:         keyPEM,
	}), nil
}

// TokenConfig returns a kubeconfig authenticating user with a bearer token (bootstrap token for
// join's bootstrap-kubelet.conf, or `kubeconfig user --token`).
func TokenConfig(server string, caPEM []byte, clusterName, user, token string) *clientcmdapi.Config {
	return newConfig(server, caPEM, clusterName, user, &clientcmdapi.AuthInfo{Token: token})
}

// item is one file of an EnsureKubeconfigs run.
type item struct {
	id       Identity
	path     string
	existing bool
	data     []byte
}

// EnsureKubeconfigs makes sure the named kubeconfig files (nil = all of KubeconfigNames) exist
// under /etc/kubernetes. An existing file is kept when it trusts the cluster CA; one that trusts
// another CA or authenticates another user is an error naming it; a different server URL only
// warrants a warning (an operator may point admin.conf at a load balancer on purpose). Every
// existing file is validated before anything is written.
func EnsureKubeconfigs(cfg *config.Config, p paths.Paths, names []string, o pki.Options) error {
	selected, err := selectNames(names)
	if err != nil {
		return err
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(log, format+"\n", args...) }
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	alg := pki.KeyAlgorithm(cfg)
	if err := pki.ValidateAlgorithm(alg); err != nil {
		return err
	}
	clusterName := cfg.Cluster.ClusterName
	if clusterName == "" {
		return errors.New("clusterName is empty")
	}
	certDir := p.CertDir(cfg.Cluster.CertificatesDir)
	caCertPath, caKeyPath := filepath.Join(certDir, "ca.crt"), filepath.Join(certDir, "ca.key")

	var items []*item
	for _, id := range Identities(cfg) {
		if !slices.Contains(selected, id.Name) {
			continue
		}
		path := p.Kubeconfig(id.File)
		ok, err := exists(path)
		if err != nil {
			return err
		}
		items = append(items, &item{id: id, path: path, existing: ok})
	}
	if len(names) == 0 || len(selected) == len(specs) {
		// Once per run of the whole phase, as kubeadm prints it.
		logf("[kubeconfig] Using kubeconfig folder %q", p.KubernetesDir())
	}

	caCert, err := pki.ReadCert(caCertPath)
	if errors.Is(err, os.ErrNotExist) {
		if !o.Writer().DryRun() {
			return fmt.Errorf("CA certificate %s not found: create it first (kubestrap init phase certs ca)", caCertPath)
		}
		// A dry run of a fresh init: the certs phase only pretended to create the CA, so there
		// is nothing to sign with; report what would be written.
		for _, it := range items {
			if it.existing {
				return fmt.Errorf("%s exists but the CA %s does not: remove it or restore the CA", it.path, caCertPath)
			}
			logf("[kubeconfig] Writing %q kubeconfig file", it.id.File)
			// Nothing to sign with, so no content to pass to the writer: the file is only named.
			logf("[dryrun] Would write file %s", it.path)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading the cluster CA: %w", err)
	}
	caKeyOK, err := exists(caKeyPath)
	if err != nil {
		return err
	}

	// Validate everything that exists before generating anything.
	var errs, warnings []error
	for _, it := range items {
		if !it.existing {
			if !caKeyOK {
				errs = append(errs, fmt.Errorf("%s is missing and %s is not present (external CA mode): provide %s with a client certificate for %q signed by %s",
					it.path, caKeyPath, it.path, it.id.User, caCertPath))
			}
			continue
		}
		w, err := validateExisting(p, it.path, it.id, caCert)
		if err != nil {
			errs = append(errs, err)
		}
		if w != nil {
			warnings = append(warnings, w)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, w := range warnings {
		logf("[kubeconfig] WARNING: %v", w)
	}

	var toGenerate []*item
	for _, it := range items {
		if !it.existing {
			toGenerate = append(toGenerate, it)
		}
	}
	if len(toGenerate) > 0 && !o.Writer().DryRun() {
		caKey, err := pki.ReadKey(caKeyPath)
		if err != nil {
			return fmt.Errorf("loading the cluster CA key: %w", err)
		}
		gen := func(it *item) error {
			c, err := clientConfigAt(caCert, caKey, it.id.Server, clusterName, it.id.User, it.id.Orgs, cfg.CertValidity(), alg, now)
			if err != nil {
				return fmt.Errorf("%s: %w", it.path, err)
			}
			it.data, err = clientcmd.Write(*c)
			if err != nil {
				return fmt.Errorf("encoding %s: %w", it.path, err)
			}
			return nil
		}
		genErrs := make([]error, len(toGenerate))
		if o.Serial {
			for i, it := range toGenerate {
				genErrs[i] = gen(it)
			}
		} else {
			var wg sync.WaitGroup
			for i, it := range toGenerate {
				wg.Add(1)
				go func() {
					defer wg.Done()
					genErrs[i] = gen(it)
				}()
			}
			wg.Wait()
		}
		if err := errors.Join(genErrs...); err != nil {
			return err
		}
	}

	var files []pki.File
	for _, it := range items {
		if it.existing {
			if caKeyOK {
				logf("[kubeconfig] Using existing kubeconfig file: %q", it.path)
			} else {
				logf("[kubeconfig] External CA mode: Using user provided %s", it.id.File)
			}
			continue
		}
		logf("[kubeconfig] Writing %q kubeconfig file", it.id.File)
		files = append(files, pki.File{Path: it.path, Data: it.data, Perm: pki.KeyFileMode})
	}
	return pki.WriteFiles(files, o)
}

func selectNames(names []string) ([]string, error) {
	all := KubeconfigNames()
	if len(names) == 0 || (len(names) == 1 && names[0] == "all") {
		return all, nil
	}
	for _, n := range names {
		if !slices.Contains(all, n) {
			return nil, fmt.Errorf("unknown kubeconfig %q: valid names are %s", n, strings.Join(all, ", "))
		}
	}
	return names, nil
}

// validateExisting checks an existing file against the cluster CA and the expected identity. It
// returns a non-nil warning for a server URL that differs.
func validateExisting(p paths.Paths, path string, id Identity, caCert *x509.Certificate) (warning, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ctx, ok := c.Contexts[c.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("%s: current context %q not found", path, c.CurrentContext)
	}
	cluster, ok := c.Clusters[ctx.Cluster]
	if !ok {
		return nil, fmt.Errorf("%s: cluster %q of the current context not found", path, ctx.Cluster)
	}
	caPEM := cluster.CertificateAuthorityData
	if len(caPEM) == 0 && cluster.CertificateAuthority != "" {
		// A CA referenced by path is a host path; read it under the root dir.
		if caPEM, err = os.ReadFile(p.Host(cluster.CertificateAuthority)); err != nil {
			return nil, fmt.Errorf("%s: reading its CA: %w", path, err)
		}
	}
	cas, err := certutil.ParseCertsPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: its CA data cannot be parsed: %w", path, err)
	}
	if !slices.ContainsFunc(cas, func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, caCert.Raw) }) {
		return nil, fmt.Errorf("%s exists but trusts a different CA than the cluster CA (fingerprint %s): remove it to have it regenerated",
			path, pki.PublicKeyPin(caCert))
	}
	if ai, ok := c.AuthInfos[ctx.AuthInfo]; ok && len(ai.ClientCertificateData) > 0 {
		cert, err := pki.ParseCertPEM(ai.ClientCertificateData)
		if err != nil {
			return nil, fmt.Errorf("%s: client certificate: %w", path, err)
		}
		if cert.Subject.CommonName != id.User {
			return nil, fmt.Errorf("%s: client certificate is for user %q, the configuration needs %q: remove it to have it regenerated",
				path, cert.Subject.CommonName, id.User)
		}
		if err := cert.CheckSignatureFrom(caCert); err != nil {
			return nil, fmt.Errorf("%s: client certificate is not signed by the cluster CA: %w", path, err)
		}
	}
	if cluster.Server != id.Server {
		warning = fmt.Errorf("a kubeconfig file %q exists already but has an unexpected API Server URL: expected: %s, got: %s",
			path, id.Server, cluster.Server)
	}
	return warning, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}
