// Package controlplane owns how init brings the control plane up in the chosen run mode: picking
// the mode, handing the component argument lists to the runner of that mode (the local supervisor
// here), and waiting until every component is healthy, with kubeadm-style progress.
package controlplane

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// Host is what mode detection looks at; tests substitute it.
type Host interface {
	// LookPath finds an executable on PATH (exec.LookPath).
	LookPath(name string) (string, error)
	// Exists reports whether a path exists.
	Exists(path string) bool
	// SystemdRuns reports whether systemd manages this host (systemd.IsPID1Systemd).
	SystemdRuns() bool
}

// RealHost is the running machine.
type RealHost struct{}

func (RealHost) LookPath(name string) (string, error) { return exec.LookPath(name) }
func (RealHost) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
func (RealHost) SystemdRuns() bool { return systemd.IsPID1Systemd() }

// criSockets are the runtime sockets kubeadm detects (reference §10), as host paths.
var criSockets = []string{"/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/var/run/cri-dockerd.sock"}

// ResolveMode turns "auto" into a concrete mode and says why. auto only picks a mode that can
// run here, since init cannot start the other two itself and would end with nothing running:
//   - a root dir other than "/": local, because neither systemd nor a kubelet reads files under
//     a root dir;
//   - systemd runs the host, a kubelet is installed and a container runtime listens: static-pod
//     (kubelet-start restarts the kubelet through systemd);
//   - systemd runs the host otherwise: systemd;
//   - anything else (a container, CI, a laptop without systemd): local.
//
// An explicit mode is returned as requested; init then says when it cannot start it.
func ResolveMode(requested string, h Host, p paths.Paths) (mode, reason string) {
	if requested != "" && requested != config.ModeAuto {
		return requested, "requested with --mode or the KubestrapConfiguration"
	}
	if !p.IsRealRoot() {
		return config.ModeLocal, fmt.Sprintf("the root dir %s is not /, and neither systemd nor a kubelet reads files under a root dir", p.Root())
	}
	if !h.SystemdRuns() {
		return config.ModeLocal, "systemd is not PID 1, so neither systemd units nor a kubelet can be started here"
	}
	if _, err := h.LookPath("kubelet"); err == nil {
		for _, s := range criSockets {
			if h.Exists(p.Host(s)) {
				return config.ModeStaticPod, fmt.Sprintf("systemd is PID 1, a kubelet is installed and a container runtime listens on %s", s)
			}
		}
	}
	return config.ModeSystemd, "systemd is PID 1 and there is no kubelet with a container runtime"
}
