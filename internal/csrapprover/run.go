package csrapprover

import (
	"context"
	"fmt"
	"io"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// Run is the approver's process: a controller with the identity in kubeconfig, until ctx ends,
// and, when healthAddr is not empty, its health endpoint there (ListenHealth). The endpoint is
// optional so that a unit or manifest written before it existed still starts.
func Run(ctx context.Context, kubeconfig, healthAddr string, log io.Writer) error {
	// No client timeout: it would cut the informers' watches.
	client, err := kubeclient.FromKubeconfigFile(kubeconfig, kubeclient.Options{Timeout: -1, UserAgent: Program})
	if err != nil {
		return err
	}
	recorder, stop := NewRecorder(client)
	defer stop()
	c := New(client, recorder, log)
	if healthAddr == "" {
		return c.Run(ctx)
	}
	hs, err := ListenHealth(healthAddr, c.Ready)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "[csr-approver] Serving /healthz and /readyz on http://%s\n", hs.Addr())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		err := hs.Serve(ctx)
		if err != nil {
			cancel() // no health endpoint: stop, so that whoever runs the approver restarts it
		}
		served <- err
	}()
	runErr := c.Run(ctx)
	cancel()
	if err := <-served; err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}
