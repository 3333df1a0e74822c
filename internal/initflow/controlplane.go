package initflow

// The phases that prepare and start the control plane on this host: preflight, etcd,
// control-plane and wait-control-plane (what the run mode does is in modes.go).

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/controlplane"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/preflight"
	"github.com/kubestrap/kubestrap/internal/runmode"
	"github.com/kubestrap/kubestrap/internal/supervisor"
)

func runPreflight(ctx context.Context, d *Data) error {
	fmt.Fprintln(d.log, "[preflight] Running pre-flight checks")
	cfg, sys := d.cfg, preflight.Host{}
	checks := []preflight.Check{preflight.AddressOnHost(sys, cfg.AdvertiseAddress())}
	if d.ownControlPlaneRunning {
		// The ports are held by this root's own components, which init continues with.
		fmt.Fprintln(d.log, "[preflight] Skipping the port checks: this root's control plane holds them")
	} else {
		checks = append(checks,
			preflight.PortFree(sys, "kube-apiserver", preflight.HostPort("", cfg.BindPort())),
			preflight.PortFree(sys, "kube-controller-manager", preflight.HostPort("127.0.0.1", cfg.ControllerManagerPort())),
			preflight.PortFree(sys, "kube-scheduler", preflight.HostPort("127.0.0.1", cfg.SchedulerPort())),
		)
		if !cfg.Kubestrap.CSRApprover.Disabled {
			checks = append(checks, preflight.PortFree(sys, components.CSRApproverName+" health", preflight.HostPort(components.CSRApproverHealthHost, cfg.CSRApproverHealthPort())))
		}
	}
	if cfg.LocalEtcd() && !d.ownControlPlaneRunning {
		checks = append(checks,
			preflight.PortFree(sys, "etcd client", preflight.HostPort(cfg.AdvertiseAddress(), cfg.EtcdClientPort())),
			preflight.PortFree(sys, "etcd client", preflight.HostPort(cfg.LoopbackHost(), cfg.EtcdClientPort())),
			preflight.PortFree(sys, "etcd peer", preflight.HostPort(cfg.AdvertiseAddress(), cfg.EtcdPeerPort())),
			preflight.PortFree(sys, "etcd metrics", preflight.HostPort(cfg.LoopbackHost(), cfg.EtcdMetricsPort())),
			preflight.DirAvailable("DirAvailable--var-lib-etcd", d.p.EtcdDataDir(etcdDataDir(cfg)), func() bool {
				// A previous init of this root that stopped halfway left its own etcd data, with
				// the etcd CA that signed it; init continues from there.
				_, err := os.Stat(d.p.CertDir(cfg.Cluster.CertificatesDir) + "/etcd/ca.crt")
				return err == nil
			}),
		)
	}
	res, err := preflight.Run(checks, d.ignorePreflight)
	for _, w := range res.Warnings {
		fmt.Fprintf(d.log, "[preflight] WARNING %s\n", w)
	}
	if err == nil && d.wholeInit && !slices.Contains(d.skip, "control-plane") {
		// The checks passed: what the control-plane phase will start can be prepared now,
		// beside the certs and kubeconfig phases (RunAll settles it).
		runmode.Prepare(d.mode, d.run)
	}
	return err
}

func etcdDataDir(cfg *config.Config) string {
	if cfg.Cluster.Etcd.Local != nil {
		return cfg.Cluster.Etcd.Local.DataDir
	}
	return ""
}

func runEtcdLocal(ctx context.Context, d *Data) error {
	if !d.cfg.LocalEtcd() {
		fmt.Fprintln(d.log, "[etcd] External etcd is configured; nothing to prepare")
		return nil
	}
	dir := d.p.EtcdDataDir(etcdDataDir(d.cfg))
	fmt.Fprintf(d.log, "[etcd] Using data directory %s\n", dir)
	// Parents get the usual 0755; only the data dir itself is private, even one that exists
	// (etcd warns about any other mode).
	if err := d.files.Mkdir(dir, 0o700, fsutil.ForceMode()); err != nil {
		return fmt.Errorf("create etcd data dir: %w", err)
	}
	return writeComponent(d, components.Etcd(d.cfg, d.p))
}

// componentPhase writes what the run mode needs for one control-plane component.
func componentPhase(name string) func(context.Context, *Data) error {
	return func(ctx context.Context, d *Data) error {
		if name == components.APIServerName {
			if err := components.EnsureAPIServerFiles(d.cfg, d.p, components.FileOptions{Files: d.files, Log: d.log}); err != nil {
				return err
			}
		}
		for _, c := range components.ControlPlane(d.cfg, d.p) {
			if c.Name == name {
				for _, w := range c.Warnings {
					fmt.Fprintf(d.log, "[control-plane] WARNING: %s\n", w)
				}
				return writeComponent(d, c)
			}
		}
		if name == components.CSRApproverName {
			fmt.Fprintln(d.log, "[control-plane] The kubelet-serving CSR approver is disabled (csrApprover.disabled); kubelets' serving certificate requests are left to you")
			return nil
		}
		return fmt.Errorf("unknown control-plane component %q", name)
	}
}

func runWaitControlPlane(ctx context.Context, d *Data) error {
	if d.dryRun {
		fmt.Fprintln(d.log, "[dryrun] Would wait for the control plane to become healthy")
		return nil
	}
	targets := waitTargets(d)
	if err := controlplane.Wait(ctx, targets, d.cfg.ControlPlaneHealthTimeout(), 100*time.Millisecond, supervisor.CheckHealth, d.log); err != nil {
		return err
	}
	c, err := d.clientset(ctx)
	if err != nil {
		return err
	}
	return controlplane.WaitControllers(ctx, c, d.cfg.ControlPlaneHealthTimeout(), 100*time.Millisecond, d.log)
}

// waitTargets are the health endpoints wait-control-plane polls: each component's readiness, and
// the CSR approver's liveness, since its readiness needs the RBAC rules that the csr-approver
// phase creates once the API is up (that phase then waits for it to be ready).
func waitTargets(d *Data) []controlplane.Target {
	var targets []controlplane.Target
	for _, c := range components.ControlPlane(d.cfg, d.p) {
		url := c.HealthURL()
		if c.Name == components.CSRApproverName {
			url = c.LivenessURL()
		}
		if url == "" {
			continue
		}
		t := controlplane.Target{Name: c.Name, URL: url}
		t.LogFile, t.LogHint = d.mode.LogHint(d.p, c.Name)
		targets = append(targets, t)
	}
	return targets
}
