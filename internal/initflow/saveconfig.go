package initflow

import (
	"context"

	"github.com/kubestrap/kubestrap/internal/clusterconfig"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// withSavedConfig makes a whole "kubestrap init" save its effective configuration (see
// clusterconfig.Save) just before the first phase after preflight runs: once the configuration
// has passed validation and the pre-flight checks, and before any file or cluster object is made
// from it, so that a later "certs renew" or "kubeconfig user" finds the settings every file was
// made with. Single "init phase" runs do not save: they are often run with only the flags that
// phase needs, and would overwrite the file with a partial configuration.
func withSavedConfig(r *workflow.Runner[*Data]) *workflow.Runner[*Data] {
	var saved *Data // the run that has saved; a runner serves one run per command
	r.BeforePhase = func(ctx context.Context, d *Data, path string) error {
		if path == "preflight" || !workflow.WholeRun(ctx) || saved == d {
			return nil
		}
		// The mode init resolved "auto" to is what this node runs.
		cfg := *d.cfg
		cfg.Kubestrap.Mode = d.mode.Name()
		if _, err := clusterconfig.Save(d.files, &cfg, d.p, d.log); err != nil {
			return err
		}
		saved = d
		return nil
	}
	return r
}
