package pki

import (
	"crypto/x509"
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig files whose embedded client certificate check-expiration reports and certs renew
// renews. kubelet.conf is left out on purpose: the kubelet rotates its own client certificate, and
// a renewal here would fight with it.
var renewableKubeconfigs = []struct{ file, longName string }{
	{"admin.conf", "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself"},
	{"super-admin.conf", "certificate embedded in the kubeconfig file for the super-admin"},
	{"controller-manager.conf", "certificate embedded in the kubeconfig file for the controller manager to use"},
	{"scheduler.conf", "certificate embedded in the kubeconfig file for the scheduler manager to use"},
	{"csr-approver.conf", "certificate embedded in the kubeconfig file for kubestrap's kubelet-serving CSR approver"},
}

// embeddedClient is a kubeconfig file loaded for its current user's client certificate.
type embeddedClient struct {
	config   *clientcmdapi.Config
	authInfo *clientcmdapi.AuthInfo
	cert     *x509.Certificate
}

// readEmbeddedClient loads a kubeconfig and the client certificate embedded for the user of its
// current context. A certificate referenced by path (kubelet.conf after rotation) is not embedded
// and is reported as such rather than followed: renewing it in place is not ours to do.
func readEmbeddedClient(path string) (*embeddedClient, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("%s: current context %q not found", path, cfg.CurrentContext)
	}
	ai, ok := cfg.AuthInfos[ctx.AuthInfo]
	if !ok {
		return nil, fmt.Errorf("%s: user %q of context %q not found", path, ctx.AuthInfo, cfg.CurrentContext)
	}
	if len(ai.ClientCertificateData) == 0 {
		return nil, fmt.Errorf("%s: user %q has no embedded client certificate (client-certificate-data)", path, ctx.AuthInfo)
	}
	cert, err := ParseCertPEM(ai.ClientCertificateData)
	if err != nil {
		return nil, fmt.Errorf("%s: client certificate of user %q: %w", path, ctx.AuthInfo, err)
	}
	return &embeddedClient{config: cfg, authInfo: ai, cert: cert}, nil
}
