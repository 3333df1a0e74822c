package initflow

// The certs and kubeconfig phases: each certificate and kubeconfig file is a sub-phase of its own
// for "init phase certs ca", and a group run makes all its selected members in one call.

import (
	"context"
	"slices"

	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/pki"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

func (d *Data) pkiOptions() pki.Options { return pki.Options{Files: d.files, Log: d.log} }

// certsPhase is the certs group: one sub-phase per certificate kubestrap can make.
func certsPhase() workflow.Phase[*Data] {
	var members []workflow.Phase[*Data]
	for _, name := range pki.CertNames(nil) {
		members = append(members, workflow.Phase[*Data]{
			Name:  name,
			Short: "Generate the " + name + " certificate and key",
			// With external etcd the etcd certificates are not kubestrap's to make.
			RunIf: func(ctx context.Context, d *Data) (bool, string) {
				return slices.Contains(pki.CertNames(d.cfg), name), ""
			},
			Run: func(ctx context.Context, d *Data) error {
				return pki.EnsureCerts(d.cfg, d.p, []string{name}, d.pkiOptions())
			},
		})
	}
	return workflow.Phase[*Data]{Name: "certs", Short: "Certificate generation", Phases: members,
		// The selected certificates in one call, so that independent keys are generated in
		// parallel.
		RunChildren: func(ctx context.Context, d *Data, names []string) error {
			if len(names) == 0 {
				return nil
			}
			return pki.EnsureCerts(d.cfg, d.p, names, d.pkiOptions())
		}}
}

// kubeconfigPhase is the kubeconfig group: one sub-phase per kubeconfig file.
func kubeconfigPhase() workflow.Phase[*Data] {
	var members []workflow.Phase[*Data]
	for _, name := range kubeconfig.KubeconfigNames() {
		members = append(members, workflow.Phase[*Data]{
			Name:  name,
			Short: "Generate the " + name + " kubeconfig file",
			Run: func(ctx context.Context, d *Data) error {
				return kubeconfig.EnsureKubeconfigs(d.cfg, d.p, []string{name}, d.pkiOptions())
			},
		})
	}
	return workflow.Phase[*Data]{Name: "kubeconfig", Short: "Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file", Phases: members,
		// One call, so that the kubeconfig folder is announced once.
		RunChildren: func(ctx context.Context, d *Data, names []string) error {
			if len(names) == 0 {
				return nil
			}
			return kubeconfig.EnsureKubeconfigs(d.cfg, d.p, names, d.pkiOptions())
		}}
}
