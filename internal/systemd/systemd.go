// Package systemd owns kubestrap's systemd integration: the unit files of the control-plane
// components (systemd mode) and of the kubelet with its kubeadm drop-in (static-pod mode and
// join), rendered from the embedded templates/ with exactly the components' argument lists; the
// root-owned copy of the kubestrap binary and the component symlinks to it that the units execute; detecting whether systemd runs this host; and starting,
// restarting and stopping units over D-Bus behind the small Manager interface.
package systemd

import (
	"fmt"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/util"

	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/procfs"
)

func environ() []string { return os.Environ() }

// IsPID1Systemd reports whether systemd manages this host: PID 1 is systemd, or
// /run/systemd/system exists (sd_booted's test, which also holds inside a systemd container
// whose /proc shows another PID 1).
func IsPID1Systemd() bool {
	if util.IsRunningSystemd() {
		return true
	}
	comm, _ := procfs.FS{}.Comm(1)
	return comm == "systemd"
}

// Manageable reports whether kubestrap may drive systemd for the units under p, and if not,
// why: systemd must run the host, and it only reads units from the real /etc/systemd/system.
func Manageable(p paths.Paths) (bool, string) {
	if !p.IsRealRoot() {
		return false, "systemd does not read units under the root dir " + p.Root()
	}
	if !IsPID1Systemd() {
		return false, "systemd is not running this host (PID 1 is not systemd)"
	}
	return true, ""
}

// ManualStartCommand is the shell command an operator runs to do what Start does, for when
// kubestrap cannot (see Manageable). Units under a root dir other than "/" are linked into
// systemd's search path first.
func ManualStartCommand(p paths.Paths, units []string) string {
	var b strings.Builder
	if !p.IsRealRoot() {
		b.WriteString("systemctl link")
		for _, u := range units {
			b.WriteString(" " + p.SystemdUnit(u))
		}
		b.WriteString(" && ")
	}
	b.WriteString("systemctl daemon-reload && systemctl enable --now " + strings.Join(units, " "))
	return b.String()
}

// KubeletRestartCommand is the shell command that makes systemd run the kubelet with the files
// WriteNodeFiles wrote, for when kubestrap cannot (see Manageable). A restart, because the kubelet
// reads its flags and configuration only at start. systemd follows a linked unit but not drop-ins
// beside it, so under a root dir other than "/" the drop-in is copied into place.
func KubeletRestartCommand(p paths.Paths) string {
	var b strings.Builder
	if !p.IsRealRoot() {
		real := paths.MustUnder("/")
		fmt.Fprintf(&b, "systemctl link %s && install -D -m 0644 %s %s && ",
			KubeletUnitPath(p), KubeletDropInPath(p), KubeletDropInPath(real))
	}
	b.WriteString("systemctl daemon-reload && systemctl enable " + KubeletUnit + " && systemctl restart " + KubeletUnit)
	return b.String()
}
