// Package kubelet owns what kubestrap writes for a node's kubelet: the KubeletConfiguration that init
// uploads to kube-system/kubelet-config and writes to /var/lib/kubelet/config.yaml (kubeadm's
// defaults, reference §8, with the config file's KubeletConfiguration merged over them); the
// per-node flags in kubeadm-flags.env; and, through package systemd, the kubelet's unit and
// 10-kubeadm.conf drop-in, which kubeadm leaves to distribution packages. init (static-pod mode)
// and join both write a node's files with WriteNodeFiles.
package kubelet

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// Configuration is the cluster-wide KubeletConfiguration for cfg. File paths in it are host paths
// as the kubelet on a node sees them (with root "/"), because the object is shared by every node;
// a node under another root dir rewrites them with ForRoot.
func Configuration(cfg *config.Config) (*kubeletv1beta1.KubeletConfiguration, error) {
	dns, err := cfg.ServiceIP(10)
	if err != nil {
		return nil, err
	}
	certDir := cfg.Cluster.CertificatesDir
	if certDir == "" {
		certDir = paths.DefaultCertificatesDir
	}
	kc := &kubeletv1beta1.KubeletConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
			Webhook: kubeletv1beta1.KubeletWebhookAuthentication{
				Enabled:  ptr.To(true),
				CacheTTL: metav1.Duration{},
			},
			X509: kubeletv1beta1.KubeletX509Authentication{ClientCAFile: certDir + "/ca.crt"},
		},
		Authorization: kubeletv1beta1.KubeletAuthorization{
			Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook,
		},
		CgroupDriver:       "systemd",
		ClusterDNS:         []string{dns.String()},
		ClusterDomain:      cfg.Cluster.Networking.DNSDomain,
		HealthzBindAddress: "127.0.0.1",
		HealthzPort:        ptr.To[int32](10248),
		RotateCertificates: true,
		// The kubelet asks the cluster CA for its serving certificate (a kubernetes.io/kubelet-serving
		// CSR) instead of signing one itself, so that kube-apiserver can verify it
		// (--kubelet-certificate-authority); kubestrap's CSR approver approves the request.
		ServerTLSBootstrap: true,
		StaticPodPath:      paths.KubernetesDir + "/manifests",
	}
	if len(cfg.KubeletConfiguration) == 0 {
		return kc, nil
	}
	return mergeUser(kc, cfg.KubeletConfiguration)
}

// mergeUser applies the KubeletConfiguration document of the config file over kubestrap's
// defaults, as kubeadm applies it over its own: every field the document sets wins, every field
// it leaves out keeps kubestrap's value, and nested objects (authentication.x509, ...) merge the
// same way field by field; a list replaces the default list, as in kubeadm. Applying the document
// as a (strategic) merge patch over the defaults does exactly that.
func mergeUser(defaults *kubeletv1beta1.KubeletConfiguration, user []byte) (*kubeletv1beta1.KubeletConfiguration, error) {
	base, err := json.Marshal(defaults)
	if err != nil {
		return nil, fmt.Errorf("render the default KubeletConfiguration: %w", err)
	}
	merged, err := strategicpatch.StrategicMergePatch(base, user, kubeletv1beta1.KubeletConfiguration{})
	if err != nil {
		return nil, fmt.Errorf("merge the KubeletConfiguration of the config file over the defaults: %w", err)
	}
	out := &kubeletv1beta1.KubeletConfiguration{}
	if err := json.Unmarshal(merged, out); err != nil {
		return nil, fmt.Errorf("merge the KubeletConfiguration of the config file over the defaults: %w", err)
	}
	// The document may leave out apiVersion and kind only in tests; the result is always typed.
	out.TypeMeta = defaults.TypeMeta
	return out, nil
}

// ForRoot returns a copy of kc whose file paths point under the root dir of p. Paths already
// under the root are left alone, so applying it twice (a caller, then WriteNodeFiles) is harmless.
func ForRoot(kc *kubeletv1beta1.KubeletConfiguration, p paths.Paths) *kubeletv1beta1.KubeletConfiguration {
	out := kc.DeepCopy()
	under := func(path string) string {
		if path == "" || p.Contains(path) {
			return path
		}
		return p.Host(path)
	}
	out.Authentication.X509.ClientCAFile = under(out.Authentication.X509.ClientCAFile)
	out.StaticPodPath = under(out.StaticPodPath)
	return out
}

// Marshal renders kc as YAML.
func Marshal(kc *kubeletv1beta1.KubeletConfiguration) ([]byte, error) {
	b, err := yaml.Marshal(kc)
	if err != nil {
		return nil, fmt.Errorf("render KubeletConfiguration: %w", err)
	}
	return b, nil
}

// Unmarshal parses a KubeletConfiguration (as stored in the kubelet-config ConfigMap).
func Unmarshal(b []byte) (*kubeletv1beta1.KubeletConfiguration, error) {
	kc := &kubeletv1beta1.KubeletConfiguration{}
	if err := yaml.Unmarshal(b, kc); err != nil {
		return nil, fmt.Errorf("parse KubeletConfiguration: %w", err)
	}
	return kc, nil
}
