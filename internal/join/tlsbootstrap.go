package join

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	watchtools "k8s.io/client-go/tools/watch"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// Names in the kubelet.conf kubestrap writes: the kubelet's own, so that the file reads the same
// whether the kubelet or kubestrap did the TLS bootstrap.
const (
	kubeletClusterName = "default-cluster"
	kubeletContextName = "default-context"
	kubeletUserName    = "default-auth"
)

// kubeletClientPair is the name prefix of the kubelet's client certificate files in its
// certificate store (kubelet-client-<date>.pem, kubelet-client-current.pem).
const kubeletClientPair = "kubelet-client"

// KubeletService is the host's systemd-managed kubelet.
type KubeletService interface {
	// Restart reloads systemd and (re)starts the kubelet so it reads the node files.
	Restart(ctx context.Context) error
	// Stop stops it, when a failed join takes its files away.
	Stop(ctx context.Context) error
}

// DetectKubelet returns the host's kubelet when join should hand the TLS bootstrap to it, as
// kubeadm does: systemd runs the host, the root dir is "/" (a kubelet under systemd reads the
// real /etc and /var/lib), and a kubelet binary is installed. Otherwise it returns nil and why
// kubestrap performs the bootstrap itself.
func DetectKubelet(p paths.Paths) (KubeletService, string) {
	if ok, why := systemd.Manageable(p); !ok {
		return nil, why
	}
	if _, err := exec.LookPath("kubelet"); err != nil {
		return nil, "no kubelet is installed"
	}
	return systemdKubelet{}, ""
}

// systemdKubelet drives kubelet.service over D-Bus.
type systemdKubelet struct{}

func (systemdKubelet) Restart(ctx context.Context) error {
	m, err := systemd.NewManager(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Reload(ctx); err != nil {
		return err
	}
	return m.EnableAndRestart(ctx, []string{systemd.KubeletUnit})
}

func (systemdKubelet) Stop(ctx context.Context) error {
	m, err := systemd.NewManager(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.StopAndDisable(ctx, []string{systemd.KubeletUnit})
}

// TLSBootstrap obtains the node's client certificate and writes kubelet.conf, then deletes
// bootstrap-kubelet.conf. With a systemd-managed kubelet the kubelet does it and join waits for
// the result; otherwise kubestrap submits the kubelet's CSR itself with the bootstrap identity
// and waits for the controller-manager to approve and sign it.
func (j *Join) TLSBootstrap(ctx context.Context) (err error) {
	defer j.undoOnError(&err)
	if j.bootstrapConfig == nil && !j.o.DryRun {
		// Run as a phase of its own: use what kubelet-start left.
		ok, err := j.loadBootstrapConfig()
		if err != nil {
			return err
		}
		if !ok {
			if err := j.Discover(ctx); err != nil {
				return err
			}
		}
	}
	if j.o.DryRun {
		j.logf("[dryrun] Would request a client certificate for %s%s (signer %s) with the bootstrap token", NodeUserPrefix, j.NodeName(), certificatesv1.KubeAPIServerClientKubeletSignerName)
		j.logf("[dryrun] Would write file %s", j.o.Paths.KubeletClientCert())
		j.logf("[dryrun] Would write file %s", j.o.Paths.Kubeconfig(KubeletConf))
		j.logf("[dryrun] Would delete %s", j.o.Paths.Kubeconfig(BootstrapKubeletConf))
		return nil
	}
	if j.o.Kubelet != nil {
		return j.waitForKubelet(ctx)
	}
	return j.bootstrapClientCert(ctx)
}

// waitForKubelet waits until the restarted kubelet has written a working kubelet.conf.
func (j *Join) waitForKubelet(ctx context.Context) error {
	path := j.o.Paths.Kubeconfig(KubeletConf)
	timeout := j.timeouts().TLSBootstrap.Duration
	j.logf("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap (up to %s)", timeout)
	var last error
	done := logx.Wait(j.log, "the kubelet to write a working %s (up to %s)", path, timeout)
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		kc, err := clientcmd.LoadFromFile(path)
		if err != nil {
			last = err
			return false, nil
		}
		c, err := j.newClient(kc)
		if err != nil {
			last = err
			return false, nil
		}
		if _, err := c.Discovery().ServerVersion(); err != nil {
			last = err
			return false, nil
		}
		return true, nil
	})
	done(err)
	if err != nil {
		return fmt.Errorf("the kubelet did not write a working %s within %s (last error: %v): see 'journalctl -u kubelet'", path, timeout, last)
	}
	return j.files.Remove(j.o.Paths.Kubeconfig(BootstrapKubeletConf))
}

// bootstrapClientCert is the kubelet's TLS bootstrap done by kubestrap: the same key, CSR,
// signer and usages as the kubelet's, so the controller-manager's csrapproving controller
// auto-approves it for the bootstrappers group, and the same files as the kubelet's certificate
// store, so a kubelet started later simply uses them.
func (j *Join) bootstrapClientCert(ctx context.Context) error {
	p := j.o.Paths
	server, caData, err := j.cluster()
	if err != nil {
		return err
	}
	c, err := j.bootstrapClient()
	if err != nil {
		return err
	}
	key, err := pki.GenerateKey(j.alg)
	if err != nil {
		return err
	}
	user := NodeUserPrefix + j.NodeName()
	csrPEM, err := certutil.MakeCSR(key, &pkix.Name{CommonName: user, Organization: []string{NodesGroup}}, nil, nil)
	if err != nil {
		return fmt.Errorf("creating the certificate signing request: %w", err)
	}
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	if _, ok := key.(*rsa.PrivateKey); ok {
		// RSA keys may also encipher; the kubelet asks for it with RSA keys and the approver
		// accepts it.
		usages = append(usages, certificatesv1.UsageKeyEncipherment)
	}
	timeout := j.timeouts().TLSBootstrap.Duration
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var name string
	var uid types.UID
	err = j.withAPIRetry(ctx, func(ctx context.Context) error {
		var err error
		name, uid, err = requestCertificate(ctx, c, csrPEM, certificatesv1.KubeAPIServerClientKubeletSignerName, usages)
		return err
	})
	if err != nil {
		return fmt.Errorf("submitting the certificate signing request for %s with the bootstrap token: %w", user, err)
	}
	j.logf("[tls-bootstrap] Submitted certificate signing request %s for %s; waiting for its approval and signature (up to %s)", name, user, timeout)
	done := logx.Wait(j.log, "approval and signature of certificate signing request %s (up to %s)", name, timeout)
	certPEM, err := waitForCertificate(ctx, c, name, uid)
	done(err)
	if err != nil {
		if parent.Err() != nil {
			return fmt.Errorf("waiting for certificate signing request %s: %w", name, parent.Err())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("certificate signing request %s was not approved and signed within %s: is the cluster's kube-controller-manager running (its csrapproving and csrsigning controllers approve and sign node CSRs)? Inspect it with 'kubectl get csr %s'", name, timeout, name)
		}
		return fmt.Errorf("certificate signing request %s: %w", name, err)
	}
	cert, err := checkIssued(certPEM, key, user)
	if err != nil {
		return fmt.Errorf("certificate signing request %s: %w", name, err)
	}
	j.logf("[tls-bootstrap] Certificate signing request %s approved; certificate valid until %s", name, cert.NotAfter.UTC().Format(time.RFC3339))

	keyPEM, err := pki.EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	dated, err := j.storeClientCert(certPEM, keyPEM)
	if err != nil {
		return err
	}
	j.logf("[tls-bootstrap] Wrote the node's client certificate and key to %s", p.KubeletClientCert())

	kc := clientcmdapi.NewConfig()
	kc.Clusters[kubeletClusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	kc.AuthInfos[kubeletUserName] = &clientcmdapi.AuthInfo{ClientCertificate: p.KubeletClientCert(), ClientKey: p.KubeletClientCert()}
	kc.Contexts[kubeletContextName] = &clientcmdapi.Context{Cluster: kubeletClusterName, AuthInfo: kubeletUserName}
	kc.CurrentContext = kubeletContextName
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", KubeletConf, err)
	}
	kubeletConf := p.Kubeconfig(KubeletConf)
	if err := j.files.WriteFile(kubeletConf, data, pki.KeyFileMode); err != nil {
		return err
	}
	j.logf("[tls-bootstrap] Wrote %s (user %s)", kubeletConf, user)
	// The token's job is done; leaving it on disk would only let it be reused until it expires.
	if err := j.files.Remove(p.Kubeconfig(BootstrapKubeletConf)); err != nil {
		return err
	}
	j.logf("[tls-bootstrap] Removed %s", p.Kubeconfig(BootstrapKubeletConf))
	j.certFile = dated
	return nil
}

// storeClientCert puts the node's certificate and key where the kubelet keeps them, in the layout
// of the kubelet's own certificate store (client-go's certificate.NewFileStore, which the kubelet
// opens with the same prefix and directory): a dated kubelet-client-<date>.pem holding the
// certificate then the key (mode 0600, fsynced), and the kubelet-client-current.pem symlink
// (absolute target) switched onto it through kubelet-client-updated.pem, so a kubelet started
// later reads them and rotates them as its own. Every file goes through the join's writer, so a
// failed join removes them. It returns the dated file.
func (j *Join) storeClientCert(certPEM, keyPEM []byte) (string, error) {
	dir := j.o.Paths.KubeletPKIDir()
	dated, err := filepath.Abs(filepath.Join(dir, kubeletClientPair+"-"+time.Now().Format("2006-01-02-15-04-05")+".pem"))
	if err != nil {
		return "", err
	}
	pair := append([]byte{}, certPEM...)
	if !bytes.HasSuffix(pair, []byte("\n")) {
		pair = append(pair, '\n')
	}
	pair = append(pair, keyPEM...)
	if err := j.files.WriteFile(dated, pair, pki.KeyFileMode); err != nil {
		return "", fmt.Errorf("writing the node's client certificate to %s: %w", dir, err)
	}
	current, updated := j.o.Paths.KubeletClientCert(), filepath.Join(dir, kubeletClientPair+"-updated.pem")
	for _, link := range []string{current, updated} {
		if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
			return "", fmt.Errorf("%s is a file, not the symlink the kubelet's certificate store keeps there: move it away and join again", link)
		}
	}
	if err := j.files.Remove(updated); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := j.files.Symlink(dated, updated); err != nil {
		return "", fmt.Errorf("linking %s to %s: %w", updated, dated, err)
	}
	if err := j.files.Rename(updated, current); err != nil {
		return "", fmt.Errorf("switching %s to %s: %w", current, dated, err)
	}
	return dated, nil
}

// requestCertificate submits a CSR for csrPEM to signer, named by the API server (csr-XXXXX) as
// the kubelet's are, and returns its name and UID.
func requestCertificate(ctx context.Context, c kubeclient.Interface, csrPEM []byte, signer string, usages []certificatesv1.KeyUsage) (string, types.UID, error) {
	req := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "csr-"},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: csrPEM, SignerName: signer, Usages: usages},
	}
	created, err := c.CertificatesV1().CertificateSigningRequests().Create(ctx, req, metav1.CreateOptions{})
	if err != nil {
		return "", "", err
	}
	return created.Name, created.UID, nil
}

// waitForCertificate watches the CSR name (of uid: a CSR recreated under the same name is not
// ours) until it is approved and signed, and returns the certificate; a denied or failed CSR ends
// the wait with the reason the approver or signer gave.
func waitForCertificate(ctx context.Context, c kubeclient.Interface, name string, uid types.UID) ([]byte, error) {
	api := c.CertificatesV1().CertificateSigningRequests()
	lw := kubeclient.ListWatch(c, api, fields.OneTermEqualSelector("metadata.name", name).String())
	var issued []byte
	_, err := watchtools.UntilWithSync(ctx, lw, &certificatesv1.CertificateSigningRequest{}, nil, func(e watch.Event) (bool, error) {
		if e.Type != watch.Added && e.Type != watch.Modified {
			return false, nil
		}
		csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
		if !ok || csr.Name != name || csr.UID != uid {
			return false, nil
		}
		approved := false
		for _, cond := range csr.Status.Conditions {
			switch cond.Type {
			case certificatesv1.CertificateDenied:
				return false, fmt.Errorf("denied (reason %q: %s)", cond.Reason, cond.Message)
			case certificatesv1.CertificateFailed:
				return false, fmt.Errorf("failed (reason %q: %s)", cond.Reason, cond.Message)
			case certificatesv1.CertificateApproved:
				approved = true
			}
		}
		if approved && len(csr.Status.Certificate) > 0 {
			issued = csr.Status.Certificate
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return issued, nil
}

// checkIssued verifies that the signed certificate is for our key and identity: a signer that
// returned something else would leave the node with credentials it cannot use.
func checkIssued(certPEM []byte, key crypto.Signer, user string) (*x509.Certificate, error) {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("the issued certificate cannot be parsed: %w", err)
	}
	cert := certs[0]
	want, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, want) {
		return nil, errors.New("the issued certificate is not for the key of this request")
	}
	if cert.Subject.CommonName != user {
		return nil, fmt.Errorf("the issued certificate is for %q, not %q", cert.Subject.CommonName, user)
	}
	return cert, nil
}
