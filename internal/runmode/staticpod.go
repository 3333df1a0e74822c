package runmode

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubelet"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/staticpod"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// StaticPod writes kubeadm's static Pod manifests and lets the host's kubelet, restarted through
// systemd, run them.
type StaticPod struct{}

func (StaticPod) Name() string { return config.ModeStaticPod }

// Startable: the kubelet is restarted through the host's systemd.
func (StaticPod) Startable(p paths.Paths) (bool, string) { return systemd.Manageable(p) }

// WriteComponent writes c's static Pod manifest.
func (StaticPod) WriteComponent(r *Run, c components.Component) error {
	pod, err := staticpod.Pod(r.Cfg, r.Paths, c)
	if err != nil {
		return err
	}
	return staticpod.Write(r.Paths, pod, staticpod.Options{Files: r.files(), Log: r.Log})
}

// Start does nothing: the kubelet, restarted by KubeletStart, runs the manifests.
func (StaticPod) Start(context.Context, *Run) error { return nil }

// KubeletStart writes the kubelet's files and restarts it, or prints the command that does when
// kubestrap cannot drive this host's systemd.
func (StaticPod) KubeletStart(ctx context.Context, r *Run) error {
	kc, err := kubelet.Configuration(r.Cfg)
	if err != nil {
		return err
	}
	nr := r.Cfg.Init.NodeRegistration
	flags := kubelet.NodeFlags{
		NodeName:  r.Cfg.NodeName(),
		CRISocket: nr.CRISocket,
		// Registered with the Node, because init has no mark-control-plane phase that would
		// add them afterwards; this also closes the window in which kubeadm's control-plane
		// node is schedulable.
		Taints:    nr.Taints,
		ExtraArgs: nr.KubeletExtraArgs,
	}
	if err := kubelet.WriteNodeFiles(r.Paths, kc, flags, kubelet.Options{Files: r.files(), Log: r.Log}); err != nil {
		return err
	}
	if r.files().DryRun() {
		fmt.Fprintf(r.Log, "[dryrun] Would run: %s\n", systemd.KubeletRestartCommand(r.Paths))
		return nil
	}
	if ok, why := systemd.Manageable(r.Paths); !ok {
		fmt.Fprintf(r.Log, "[kubelet-start] Wrote the kubelet's files but did not restart it: %s.\n[kubelet-start] To run the control plane's static pods, run:\n\n  %s\n\n", why, systemd.KubeletRestartCommand(r.Paths))
		return nil
	}
	m, err := systemd.NewManager(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintln(r.Log, "[kubelet-start] Restarting the kubelet")
	if err := m.Reload(ctx); err != nil {
		return err
	}
	// Always a restart, as kubeadm does: the kubelet reads its flags and configuration only
	// when it starts.
	return m.EnableAndRestart(ctx, []string{systemd.KubeletUnit})
}

// LogHint: the container runtime keeps the pods' output.
func (StaticPod) LogHint(_ paths.Paths, component string) (string, string) {
	return "", "crictl logs $(crictl ps -a --name " + component + " -q | head -1)"
}

func (StaticPod) FindRunning(paths.Paths) Running { return Running{} }

// Auto: static-pod mode where the host's systemd can restart an installed kubelet and a
// container runtime listens for it.
func (StaticPod) Auto(h Host, p paths.Paths) (bool, string) {
	if !p.IsRealRoot() || !h.SystemdRuns() {
		return false, ""
	}
	if _, err := h.LookPath("kubelet"); err != nil {
		return false, ""
	}
	for _, s := range CRISockets {
		if h.Exists(p.Host(s)) {
			return true, fmt.Sprintf("systemd is PID 1, a kubelet is installed and a container runtime listens on %s", s)
		}
	}
	return false, ""
}

// CRISockets are the runtime sockets kubeadm detects (reference §10), as host paths, in the
// order it tries them.
var CRISockets = []string{"/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/var/run/cri-dockerd.sock"}

// FoundCRIEndpoints are the CRI endpoints (unix://path) of the CRISockets that exist, in
// CRISockets' order; exists is asked with each socket's host path under p.
func FoundCRIEndpoints(p paths.Paths, exists func(string) bool) []string {
	var found []string
	for _, s := range CRISockets {
		if exists(p.Host(s)) {
			found = append(found, "unix://"+s)
		}
	}
	return found
}

// CRISocketPath is the socket path of a CRI endpoint (unix:///path, or a plain absolute path):
// kubestrap talks to runtimes over unix sockets only.
func CRISocketPath(endpoint string) (string, error) {
	path := strings.TrimPrefix(endpoint, "unix://")
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("CRI endpoint %q: only unix sockets (unix:///path) are supported", endpoint)
	}
	return path, nil
}

// CRIEndpoint is configured (nodeRegistration.criSocket), or else the one runtime socket found
// on the host (FoundCRIEndpoints), as kubeadm detects it: "" when there is none, and an error
// when there are several, since only the kubelet's configuration can say which one it uses.
func CRIEndpoint(configured string, found []string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("found several container runtimes (%s): set nodeRegistration.criSocket to the one the kubelet uses", strings.Join(found, ", "))
}

// Discover reads the control-plane manifests present, through staticpod.ReadCommand: the
// command lines the kubelet runs.
func (m StaticPod) Discover(p paths.Paths) (Installed, bool) {
	in := Installed{Mode: m.Name(), Contained: true}
	found := false
	for _, name := range ControlPlane {
		path := p.Manifest(name)
		if !exists(path) {
			continue
		}
		found = true
		cmd, err := staticpod.ReadCommand(path, name)
		if err != nil {
			in.Warnings = append(in.Warnings, err.Error())
			continue
		}
		in.Components = append(in.Components, Found{Name: name, Argv: cmd.Argv(), Source: path})
	}
	return in, found
}

// Stop removes the manifests, so that the kubelet stops the pods, then stops the kubelet.
func (StaticPod) Stop(ctx context.Context, in Installed, s Stopper) error {
	return s.StopStaticPods(ctx, in)
}

// Status: the kubelet and the container runtime report on static pods; kubestrap's status
// reports the local supervisor only.
func (m StaticPod) Status(context.Context, paths.Paths) (StatusReport, error) {
	return nil, errors.New("the control plane runs as static pods of the kubelet, which kubestrap status does not report on: see them with 'crictl ps --name kube-' and 'kubectl -n kube-system get pods'")
}

// Source is the static pod manifest, with the $(VAR) references the kubelet expands expanded.
func (StaticPod) Source(p paths.Paths, component string) (Source, bool) {
	path := p.Manifest(component)
	return Source{Name: "manifest", Label: "manifest", Path: path, Read: func() (*CommandLine, error) {
		c, err := staticpod.ReadCommand(path, component)
		if err != nil {
			return nil, err
		}
		cl := &CommandLine{Path: path}
		if len(c.Command) == 0 {
			// The image's entrypoint runs the args.
			cl.ArgsOnly, cl.Image = true, c.Image
		}
		for _, w := range c.Argv() {
			cl.Words = append(cl.Words, Word{Text: w, Origin: "manifest"})
		}
		return cl, nil
	}}, true
}
