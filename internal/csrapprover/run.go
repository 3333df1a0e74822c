package csrapprover

import (
	"context"
	"io"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// Run is the approver's process: a controller with the identity in kubeconfig, until ctx ends.
func Run(ctx context.Context, kubeconfig string, log io.Writer) error {
	// No client timeout: it would cut the informers' watches.
	client, err := kubeclient.FromKubeconfigFile(kubeconfig, kubeclient.Options{Timeout: -1, UserAgent: Program})
	if err != nil {
		return err
	}
	recorder, stop := NewRecorder(client)
	defer stop()
	return New(client, recorder, log).Run(ctx)
}
