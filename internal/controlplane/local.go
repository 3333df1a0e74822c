package controlplane

import (
	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/supervisor"
)

// SupervisorSpec describes the local-mode control plane for the supervisor: each component's
// argument list exactly as the argument builder made it (the same list a static pod manifest or a
// systemd unit gets), started through its own symlink to the kubestrap executable.
func SupervisorSpec(cfg *config.Config, p paths.Paths, cps []components.Component, exe string) supervisor.Spec {
	s := cfg.Kubestrap.Supervisor
	spec := supervisor.Spec{
		Root:        p.Root(),
		Executable:  exe,
		LogMaxBytes: int64(s.LogMaxSizeMB) << 20,
		LogMaxFiles: int(s.LogMaxFiles),
	}
	if s.MaxRestartBackoff != nil {
		spec.MaxBackoff = s.MaxRestartBackoff.Duration
	}
	if s.StopTimeout != nil {
		spec.StopTimeout = s.StopTimeout.Duration
	}
	for _, c := range cps {
		spec.Components = append(spec.Components, supervisor.ComponentSpec{
			Name:      c.Name,
			Path:      p.ComponentBinary(c.Name),
			Args:      c.Args,
			HealthURL: c.HealthURL(),
		})
	}
	return spec
}
