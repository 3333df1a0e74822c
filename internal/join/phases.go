package join

import (
	"context"
	"os"

	"github.com/kubestrap/kubestrap/internal/workflow"
)

// kubeadmOnlyPhases are the phases of kubeadm v1.37.2's join that kubestrap has no counterpart
// for. check-etcd (hidden in kubeadm's help, accepted by its --skip-phases) checks the cluster's
// health, which etcd-join's learner add does itself.
var kubeadmOnlyPhases = []string{"check-etcd"}

// NewRunner is join's workflow: its phases in run order, each a method of Join. A worker runs
// preflight, discovery, images, kubelet-start, tls-bootstrap and join-addresses; a control-plane join
// (--control-plane) runs preflight, discovery, control-plane-prepare, kubelet-start (init's, for
// its run mode), etcd-join, wait-control-plane and control-plane-join, with kubeadm's names.
func NewRunner() *workflow.Runner[*Join] {
	const endpointArg = "[api-server-endpoint]"
	cpPhase := func(name, short string, run func(*Join, context.Context) error) workflow.Phase[*Join] {
		return workflow.Phase[*Join]{Name: name, Short: short, ArgsUsage: endpointArg, RunIf: controlPlaneOnly, Run: phase(run)}
	}
	return &workflow.Runner[*Join]{Command: "join", KubeadmOnly: kubeadmOnlyPhases, Phases: []workflow.Phase[*Join]{
		{Name: "preflight", Short: "Run join pre-flight checks (for a control-plane join also init's: address, ports, etcd data dir)", ArgsUsage: endpointArg, Run: phase((*Join).Preflight)},
		{Name: "discovery", Short: "Discover the cluster and verify its identity (bootstrap token and CA pin, or discovery file)", ArgsUsage: endpointArg, Run: phase((*Join).Discover)},
		{Name: "images", Short: "Import into the container runtime the images a worker's kubelet needs and lacks (the pause image, kube-proxy's unless the cluster disabled it), built from this binary", ArgsUsage: endpointArg, RunIf: imagesRunIf, Run: phase((*Join).Images)},
		{Name: "control-plane-prepare", Short: "Prepare the machine for serving a control plane (control-plane join only)", ArgsUsage: endpointArg, RunIf: controlPlaneOnly, Phases: []workflow.Phase[*Join]{
			cpPhase("download-certs", "Download the certificates shared among control-plane nodes from the kubeadm-certs Secret", (*Join).DownloadCerts),
			cpPhase("certs", "Generate this node's own certificates (its SANs) from the shared CAs", (*Join).ControlPlaneCerts),
			cpPhase("kubeconfig", "Generate this node's kubeconfig files", (*Join).ControlPlaneKubeconfigs),
			cpPhase("control-plane", "Write the files of kube-apiserver, kube-controller-manager, kube-scheduler and the CSR approver for the run mode", (*Join).ControlPlaneFiles),
		}},
		{Name: "kubelet-start", Short: "Write the cluster CA, bootstrap-kubelet.conf and the kubelet's configuration, flags and unit; restart a systemd-managed kubelet (control-plane join: init's kubelet-start for the run mode)", ArgsUsage: endpointArg, Run: phase((*Join).kubeletStartPhase)},
		// kubeadm's kubelet-wait-bootstrap is the step that ends with the node's kubelet.conf.
		{Name: "tls-bootstrap", Aliases: []string{"kubelet-wait-bootstrap"}, Short: "Obtain the node's client certificate through a CSR and write kubelet.conf (workers)", ArgsUsage: endpointArg, RunIf: workerOnly, Run: phase((*Join).TLSBootstrap)},
		cpPhase("etcd-join", "Add this node's etcd member as a learner under the cluster's join lock, start the control plane, promote the member", (*Join).EtcdJoin),
		cpPhase("wait-control-plane", "Wait for this node's control plane to be healthy", (*Join).WaitControlPlane),
		{Name: "control-plane-join", Short: "Join a machine as a control plane instance (control-plane join only)", ArgsUsage: endpointArg, RunIf: controlPlaneOnly, Phases: []workflow.Phase[*Join]{
			cpPhase("mark-control-plane", "Label and taint this node's Node (where its run mode registers one)", (*Join).MarkControlPlane),
			cpPhase("csr-approver", "Record this node's addresses for kubestrap's kubelet-serving CSR approver (where its run mode runs a kubelet) and wait for this node's approver", (*Join).CSRApprover),
		}},
		{Name: "join-addresses", Short: "Record the node's addresses on its Lease, for kubestrap's kubelet-serving CSR approver (workers)", ArgsUsage: endpointArg, RunIf: hasNodeCredentials, Run: phase((*Join).RecordAddresses)},
	}}
}

// controlPlaneOnly and workerOnly are the RunIf of the phases of one kind of join; a phase of
// the other kind is skipped silently.
func controlPlaneOnly(_ context.Context, j *Join) (bool, string) { return j.IsControlPlane(), "" }
func workerOnly(_ context.Context, j *Join) (bool, string)       { return !j.IsControlPlane(), "" }

// kubeletStartPhase is the worker's kubelet-start, or for a control-plane node init's.
func (j *Join) kubeletStartPhase(ctx context.Context) error {
	if j.IsControlPlane() {
		return j.ControlPlaneKubeletStart(ctx)
	}
	return j.KubeletStart(ctx)
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
	if j.IsControlPlane() {
		return false, ""
	}
	if j.o.DryRun {
		return true, ""
	}
	if _, err := os.Stat(j.o.Paths.Kubeconfig(KubeletConf)); err != nil {
		return false, "[join-addresses] Skipped: no " + j.o.Paths.Kubeconfig(KubeletConf) + " (the node's credentials) to record the node's addresses with; kubestrap's CSR approver will not approve serving certificates with IP addresses for this node"
	}
	return true, ""
}
