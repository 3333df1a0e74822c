package bootstrap

import (
	"context"
	"fmt"
	"slices"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
)

// SignClusterInfo adds the detached JWS signature of each signing token to kube-public/cluster-info,
// the same value the controller-manager's bootstrapsigner computes (HS256 over the kubeconfig key,
// keyed by the token secret). Writing it at once means a token is usable for discovery the moment it
// exists: on a fresh control plane the bootstrapsigner only starts signing a few seconds after the
// apiserver is ready, and a join in that window would wait. The bootstrapsigner stays in charge
// afterwards (it removes signatures of deleted or expired tokens).
func SignClusterInfo(ctx context.Context, c kubeclient.Interface, tokens ...Token) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		api := c.CoreV1().ConfigMaps(metav1.NamespacePublic)
		cm, err := api.Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("ConfigMap kube-public/%s does not exist: run 'kubestrap init phase bootstrap-token' on the control plane", bootstrapapi.ConfigMapClusterInfo)
		}
		if err != nil {
			return wrap("get ConfigMap", metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, err)
		}
		content, ok := cm.Data[bootstrapapi.KubeConfigKey]
		if !ok {
			return fmt.Errorf("ConfigMap kube-public/%s has no %q key", bootstrapapi.ConfigMapClusterInfo, bootstrapapi.KubeConfigKey)
		}
		changed := false
		for _, t := range tokens {
			if !slices.Contains(t.Usages, "signing") {
				continue
			}
			sig, err := jws.ComputeDetachedSignature(content, t.ID, t.Secret)
			if err != nil {
				return fmt.Errorf("sign cluster-info for token %s: %w", t.ID, err)
			}
			key := bootstrapapi.JWSSignatureKeyPrefix + t.ID
			if cm.Data[key] != sig {
				cm.Data[key] = sig
				changed = true
			}
		}
		if !changed {
			return nil
		}
		_, err = api.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
}
