// Package controlplane owns how init brings the control plane up in the chosen run mode: picking
// the mode, handing the component argument lists to the runner of that mode (the local supervisor
// here), and waiting until every component is healthy, with kubeadm-style progress.
package controlplane

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// Host is what mode detection looks at; tests substitute it.
type Host interface {
	// LookPath finds an executable on PATH (exec.LookPath).
	LookPath(name string) (string, error)
	// Exists reports whether a path exists.
	Exists(path string) bool
	// InitComm is the command name of PID 1 (/proc/1/comm).
	InitComm() string
}

// RealHost is the running machine.
type RealHost struct{ Paths paths.Paths }

func (RealHost) LookPath(name string) (string, error) { return exec.LookPath(name) }
func (RealHost) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
func (RealHost) InitComm() string {
	b, _ := os.ReadFile("/proc/1/comm")
	return string(bytes.TrimSpace(b))
}

// criSockets are the runtime sockets kubeadm detects (reference §10), as host paths.
var criSockets = []string{"/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/var/run/cri-dockerd.sock"}

// ResolveMode turns "auto" into a concrete mode and says why: static-pod when a kubelet and a
// container runtime are installed, systemd when systemd is PID 1, local otherwise.
func ResolveMode(requested string, h Host, p paths.Paths) (mode, reason string) {
	if requested != "" && requested != config.ModeAuto {
		return requested, "requested with --mode or the KubestrapConfiguration"
	}
	if _, err := h.LookPath("kubelet"); err == nil {
		for _, s := range criSockets {
			if h.Exists(p.Host(s)) {
				return config.ModeStaticPod, fmt.Sprintf("a kubelet is installed and a container runtime listens on %s", s)
			}
		}
	}
	if h.InitComm() == "systemd" {
		return config.ModeSystemd, "systemd is PID 1"
	}
	return config.ModeLocal, "no kubelet with a container runtime, and systemd is not PID 1"
}
