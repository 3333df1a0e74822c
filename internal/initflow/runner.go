// Package initflow owns the init workflow: the ordered phases that turn a host into a control-plane
// node (preflight, images, certs, kubeconfig, etcd, control-plane, kubelet-start, wait-control-plane,
// upload-config, upload-certs, mark-control-plane, bootstrap-token, csr-approver, addon, show-join-command) and the state they share. Each phase calls the
// package that owns its work; the command layer only builds the Data and runs the phases.
package initflow

import (
	"context"
	"fmt"
	"io"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// Options are the run's choices beyond the configuration.
type Options struct {
	DryRun          bool
	IgnorePreflight []string
	SkipTokenPrint  bool
	// UploadCerts runs the upload-certs phase (kubeadm's --upload-certs) with CertificateKey, a
	// new key when empty; SkipCertificateKeyPrint keeps the key off the output.
	UploadCerts             bool
	CertificateKey          string
	SkipCertificateKeyPrint bool
	// Images are the images phase's inputs (static-pod mode).
	Images ImagesOptions
	// Out receives what the user reads after init (how to use admin.conf, the join command);
	// Log the "[phase]" progress lines.
	Out, Log io.Writer
	// Files writes every file of the run; nil is the disk (or the dry-run writer). A
	// control-plane join passes its fsutil.Recorder, so that a failed join removes them.
	Files fsutil.Writer
}

// Data is what every init phase works on; built once per run.
type Data struct {
	cfg    *config.Config
	p      paths.Paths
	mode   runmode.Mode
	run    *runmode.Run
	dryRun bool
	// files writes every file of the run: the disk, or the dry-run writer when dryRun.
	files           fsutil.Writer
	ignorePreflight []string
	skipTokenPrint  bool
	images          ImagesOptions
	out, log        io.Writer

	uploadCerts             bool
	skipCertificateKeyPrint bool
	// certificateKey is the key the shared certificates are (to be) encrypted with; certsUploaded
	// says this run uploaded them, so show-join-command prints the control-plane join command.
	certificateKey string
	certsUploaded  bool

	client kubeclient.Interface
	// skip is a whole run's --skip-phases merged with the configuration's skipPhases; CheckStarted
	// reads it after the run.
	skip []string
	// wholeInit is set while RunAll runs the phases (see there).
	wholeInit bool
	// ownControlPlaneRunning is set when this root's supervisor runs (see AlreadyUp): an
	// interrupted init being completed, whose components hold the ports.
	ownControlPlaneRunning bool
}

// New prepares a run of init for cfg under p in mode (already resolved from auto). It fails before
// anything is written when this build cannot run mode.
func New(cfg *config.Config, p paths.Paths, mode string, o Options) (*Data, error) {
	m, err := runmode.Get(mode)
	if err != nil {
		return nil, err
	}
	d := &Data{cfg: cfg, p: p, mode: m, dryRun: o.DryRun || cfg.Init.DryRun,
		ignorePreflight: o.IgnorePreflight, skipTokenPrint: o.SkipTokenPrint, images: o.Images, out: o.Out, log: o.Log,
		uploadCerts: o.UploadCerts, certificateKey: o.CertificateKey, skipCertificateKeyPrint: o.SkipCertificateKeyPrint}
	if d.certificateKey == "" {
		d.certificateKey = cfg.Init.CertificateKey
	}
	d.files = o.Files
	if d.files == nil {
		d.files = fsutil.For(d.dryRun, d.log)
	}
	d.run = &runmode.Run{Cfg: cfg, Paths: p, Files: d.files, Log: d.log}
	if d.dryRun {
		fmt.Fprintf(d.log, "[dryrun] Nothing will be written under %s\n", p.Root())
	}
	return d, nil
}

// RunAll runs every phase not in skip (and not in the configuration's skipPhases), as
// "kubestrap init" does.
func RunAll(ctx context.Context, r *workflow.Runner[*Data], d *Data, skip []string) error {
	d.skip = d.Skip(skip)
	// A whole init's preflight begins the control plane's preparation (runmode.Prepare), which
	// is settled here before init returns; a single phase, or a control-plane join running
	// init's preflight, prepares nothing.
	d.wholeInit = true
	defer func() {
		d.run.Settle()
		d.wholeInit = false
	}()
	return r.Run(ctx, d, d.skip)
}

// Skip is what a full run skips: the configuration's skipPhases, then the --skip-phases given.
func (d *Data) Skip(flag []string) []string {
	return workflow.MergeSkip(d.cfg.Init.SkipPhases, flag)
}

// kubeadmOnlyPhases are the phases of kubeadm v1.37.2's init that kubestrap has no counterpart
// for yet: skipping them is accepted (kubeadm configurations list them) and only noted.
var kubeadmOnlyPhases = []string{
	"kubelet-finalize", "kubelet-finalize/enable-client-cert-rotation",
}

// NewRunner returns init's phases in kubeadm's order, each a call into the package that owns the
// work; kubestrap's run modes decide what the etcd, control-plane and kubelet-start phases write.
func NewRunner() *workflow.Runner[*Data] {
	return withSavedConfig(&workflow.Runner[*Data]{Command: "init", KubeadmOnly: kubeadmOnlyPhases, Phases: []workflow.Phase[*Data]{
		{Name: "preflight", Short: "Run pre-flight checks", Run: runPreflight},
		{Name: "images", Short: "Import the images the static pods and pod sandboxes need into the container runtime, built from this binary, where it lacks them (static-pod mode)", RunIf: imagesRunIf, Run: runImages},
		certsPhase(),
		kubeconfigPhase(),
		{Name: "etcd", Short: "Prepare the local etcd member", Phases: []workflow.Phase[*Data]{
			{Name: "local", Short: "Write the local etcd member's data dir and, in static-pod or systemd mode, its manifest or unit", Run: runEtcdLocal},
		}},
		{Name: "control-plane", Short: "Write the control plane components' files and, in local or systemd mode, start them", Phases: []workflow.Phase[*Data]{
			{Name: "apiserver", Short: "Write the kube-apiserver's files (encryption config, audit policy, manifest or unit)", Run: componentPhase(components.APIServerName)},
			{Name: "controller-manager", Short: "Write the kube-controller-manager's manifest or unit", Run: componentPhase(components.ControllerManagerName)},
			{Name: "scheduler", Short: "Write the kube-scheduler's manifest or unit", Run: componentPhase(components.SchedulerName)},
			{Name: "csr-approver", Short: "Write kubestrap's kubelet-serving CSR approver's manifest or unit (unless csrApprover.disabled)", Run: componentPhase(components.CSRApproverName)},
		}, Finish: startControlPlane},
		{Name: "kubelet-start", Short: "Write the kubelet's configuration and (re)start it (static-pod mode)", Run: runKubeletStart},
		{Name: "wait-control-plane", Short: "Wait for the control plane to be healthy", RunIf: controlPlaneRunning, Run: runWaitControlPlane},
		{Name: "upload-config", Aliases: []string{"uploadconfig"}, Short: "Upload the kubeadm and kubelet configuration to ConfigMaps", Phases: []workflow.Phase[*Data]{
			{Name: "kubeadm", Short: "Upload the ClusterConfiguration to kube-system/kubeadm-config", RunIf: controlPlaneRunning, Run: runUploadKubeadmConfig},
			{Name: "kubelet", Short: "Upload the kubelet configuration to kube-system/kubelet-config", RunIf: controlPlaneRunning, Run: runUploadKubeletConfig},
		}},
		{Name: "upload-certs", Short: "Upload the shared certificates, encrypted, to kube-system/kubeadm-certs for joining control-plane nodes (only with --upload-certs)", RunIf: controlPlaneRunning, Run: runUploadCerts},
		{Name: "mark-control-plane", Short: "Label and taint the control-plane Node (where a kubelet registers one)", RunIf: markControlPlaneRunIf, Run: runMarkControlPlane},
		{Name: "bootstrap-token", Aliases: []string{"bootstraptoken"}, Short: "Create the bootstrap token, its RBAC rules and the cluster-info ConfigMap", RunIf: controlPlaneRunning, Run: runBootstrapToken},
		{Name: "csr-approver", Short: "Create the kubelet-serving CSR approver's RBAC rules and its record of the nodes' join addresses", RunIf: controlPlaneRunning, Run: runCSRApproverObjects},
		addonPhase(),
		{Name: "show-join-command", Short: "Show the join command for worker nodes", RunIf: controlPlaneRunning, Run: runShowJoinCommand},
	}})
}
