package initflow

// The upload-certs phase: the shared CA keys, service-account keys and etcd CA, encrypted under
// the certificate key into kube-system/kubeadm-certs for control-plane nodes that join later.

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/copycerts"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// runUploadCerts uploads the shared certificates when --upload-certs (kubeadm runs the phase
// only then), with the configured certificate key or a new one, and prints the key on a line of
// its own on stdout unless --skip-certificate-key-print. The key is kept for show-join-command.
func runUploadCerts(ctx context.Context, d *Data) error {
	if !d.uploadCerts {
		fmt.Fprintln(d.log, "[upload-certs] Skipping phase: certificates are uploaded only with --upload-certs")
		return nil
	}
	keyHex := d.certificateKey
	if keyHex == "" {
		k, err := copycerts.NewKey()
		if err != nil {
			return err
		}
		keyHex = k
	}
	key, err := copycerts.ParseKey(keyHex)
	if err != nil {
		return err
	}
	certDir := d.p.CertDir(d.cfg.Cluster.CertificatesDir)
	cfg := d.cfg
	if ext := d.cfg.Cluster.Etcd.External; ext != nil {
		// External etcd files are host paths, under the root dir like every other.
		c, mapped := *d.cfg, *ext
		for _, f := range []*string{&mapped.CAFile, &mapped.CertFile, &mapped.KeyFile} {
			if *f != "" {
				*f = d.p.Host(*f)
			}
		}
		c.Cluster.Etcd.External = &mapped
		cfg = &c
	}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Would create Secret kube-system/%s holding %s encrypted with the certificate key, owned by a new bootstrap token that expires in %s, and Role and RoleBinding %s in kube-system\n",
			copycerts.SecretName, strings.Join(copycerts.Keys(d.cfg), ", "), copycerts.TokenTTLText, copycerts.RoleName)
	} else {
		fmt.Fprintf(d.log, "[upload-certs] Storing the certificates in Secret %q in the \"kube-system\" namespace\n", copycerts.SecretName)
		// kube-apiserver's encryption keys go with them: a control-plane node joins only with the
		// cluster's (join refuses an upload without them, saying to upload again).
		var opts []copycerts.Option
		if enc := EncryptionConfigFile(d.cfg, d.p); enc != "" {
			if _, err := os.Stat(enc); err == nil {
				opts = append(opts, copycerts.EncryptionConfig(enc))
			} else {
				fmt.Fprintf(d.log, "[upload-certs] WARNING: kube-apiserver's encryption configuration %s is not there (%v): control-plane nodes cannot join with this upload; upload again once the control-plane phase has written it\n", enc, err)
			}
		}
		if err := d.withAdminClient(ctx, func(ctx context.Context, c kubeclient.Interface) error {
			return copycerts.Upload(ctx, c, cfg, certDir, key, opts...)
		}); err != nil {
			return err
		}
	}
	d.certificateKey = keyHex
	d.certsUploaded = true
	if !d.skipCertificateKeyPrint {
		fmt.Fprintln(d.log, "[upload-certs] Using certificate key:")
		fmt.Fprintln(d.out, keyHex)
	}
	return nil
}

// EncryptionConfigFile is the encryption configuration kube-apiserver runs with (a host path):
// uploaded with the certificates, since every apiserver of the cluster needs the same keys.
func EncryptionConfigFile(cfg *config.Config, p paths.Paths) string {
	return components.ArgMap(components.APIServer(cfg, p).Args)["encryption-provider-config"]
}
