package join

import (
	"context"
	"os"

	"github.com/kubestrap/kubestrap/internal/workflow"
)

// kubeadmOnlyPhases are the phases of kubeadm v1.37.2's join that kubestrap has no counterpart
// for: all of them serve a control-plane join, which kubestrap does not do yet. check-etcd is
// hidden in kubeadm's help but accepted by its --skip-phases.
var kubeadmOnlyPhases = []string{
	"control-plane-prepare", "control-plane-prepare/download-certs", "control-plane-prepare/certs",
	"control-plane-prepare/kubeconfig", "control-plane-prepare/control-plane",
	"check-etcd", "etcd-join",
	"control-plane-join", "control-plane-join/mark-control-plane",
	"wait-control-plane",
}

// NewRunner is join's workflow: its phases in run order, each a method of Join.
func NewRunner() *workflow.Runner[*Join] {
	const endpointArg = "[api-server-endpoint]"
	return &workflow.Runner[*Join]{Command: "join", KubeadmOnly: kubeadmOnlyPhases, Phases: []workflow.Phase[*Join]{
		{Name: "preflight", Short: "Run join pre-flight checks", ArgsUsage: endpointArg, Run: phase((*Join).Preflight)},
		{Name: "discovery", Short: "Discover the cluster and verify its identity (bootstrap token and CA pin, or discovery file)", ArgsUsage: endpointArg, Run: phase((*Join).Discover)},
		{Name: "kubelet-start", Short: "Write the cluster CA, bootstrap-kubelet.conf and the kubelet's configuration, flags and unit; restart a systemd-managed kubelet", ArgsUsage: endpointArg, Run: phase((*Join).KubeletStart)},
		// kubeadm's kubelet-wait-bootstrap is the step that ends with the node's kubelet.conf.
		{Name: "tls-bootstrap", Aliases: []string{"kubelet-wait-bootstrap"}, Short: "Obtain the node's client certificate through a CSR and write kubelet.conf", ArgsUsage: endpointArg, Run: phase((*Join).TLSBootstrap)},
		{Name: "join-addresses", Short: "Record the node's addresses on its Lease, for kubestrap's kubelet-serving CSR approver", ArgsUsage: endpointArg, RunIf: hasNodeCredentials, Run: phase((*Join).RecordAddresses)},
	}}
}

// RunAll runs every phase not skipped, the JoinConfiguration's skipPhases and then skip (the
// --skip-phases given), as "kubestrap join" does, and keeps what the join wrote once all succeed.
func RunAll(ctx context.Context, r *workflow.Runner[*Join], j *Join, skip []string) error {
	if err := r.Run(ctx, j, workflow.MergeSkip(j.SkipPhases(), skip)); err != nil {
		return err
	}
	j.Commit()
	return nil
}

// phase adapts a Join method to the runner's argument order.
func phase(m func(*Join, context.Context) error) func(context.Context, *Join) error {
	return func(ctx context.Context, j *Join) error { return m(j, ctx) }
}

// hasNodeCredentials is join-addresses' RunIf: it writes as the node, with the kubelet.conf that
// tls-bootstrap leaves; a join whose tls-bootstrap is skipped has none to write with.
func hasNodeCredentials(_ context.Context, j *Join) (bool, string) {
	if j.o.DryRun {
		return true, ""
	}
	if _, err := os.Stat(j.o.Paths.Kubeconfig(KubeletConf)); err != nil {
		return false, "[join-addresses] Skipped: no " + j.o.Paths.Kubeconfig(KubeletConf) + " (the node's credentials) to record the node's addresses with; kubestrap's CSR approver will not approve serving certificates with IP addresses for this node"
	}
	return true, ""
}
