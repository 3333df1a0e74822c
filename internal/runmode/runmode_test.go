package runmode

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// TestRegistryMatchesConfig: config.Modes, the one list of mode names that validation and --mode
// use, names exactly the implementations here, in the same order, each under its own name.
func TestRegistryMatchesConfig(t *testing.T) {
	var names []string
	for _, m := range registry {
		names = append(names, m.Name())
	}
	if !slices.Equal(names, config.Modes) {
		t.Fatalf("registry has %v, config.Modes has %v", names, config.Modes)
	}
	for _, n := range Names() {
		m, err := Get(n)
		if err != nil || m.Name() != n {
			t.Errorf("Get(%q) = %v, %v", n, m, err)
		}
	}
}

func TestGetUnknown(t *testing.T) {
	for _, n := range []string{"", config.ModeAuto, "docker"} {
		_, err := Get(n)
		if err == nil {
			t.Fatalf("Get(%q) succeeded", n)
		}
		want := `unknown run mode "` + n + `": use local, static-pod or systemd (or auto)`
		if err.Error() != want {
			t.Errorf("Get(%q) = %q, want %q", n, err, want)
		}
	}
}

func TestList(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""}, {[]string{"a"}, "a"}, {[]string{"a", "b"}, "a or b"}, {[]string{"a", "b", "c"}, "a, b or c"},
	} {
		if got := List(tc.in); got != tc.want {
			t.Errorf("List(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestUnderRootDir: under a root dir only local mode can start what it writes; the others say why
// not, and their start phases print the commands instead of failing.
func TestUnderRootDir(t *testing.T) {
	p := paths.MustUnder(t.TempDir())
	for _, m := range registry {
		ok, why := m.Startable(p)
		if ok != (m.Name() == config.ModeLocal) {
			t.Errorf("%s: Startable under a root dir = %v (%s)", m.Name(), ok, why)
		}
		if !ok && why == "" {
			t.Errorf("%s: not startable without a reason", m.Name())
		}
	}
}

// TestKubeletStartOnlyStaticPod: the modes without a kubelet say so and write nothing.
func TestKubeletStartOnlyStaticPod(t *testing.T) {
	for _, m := range []Mode{Local{}, Systemd{}} {
		var log bytes.Buffer
		r := &Run{Paths: paths.MustUnder(t.TempDir()), Log: &log}
		if err := m.KubeletStart(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if want := `[kubelet-start] Skipped: mode "` + m.Name() + `" runs the control plane without a kubelet`; !strings.Contains(log.String(), want) {
			t.Errorf("%s: log %q lacks %q", m.Name(), log.String(), want)
		}
	}
}

// TestLogHint: every mode points at a component's output, by file or by command.
func TestLogHint(t *testing.T) {
	p := paths.MustUnder("/r")
	for _, m := range registry {
		file, cmd := m.LogHint(p, "kube-apiserver")
		if (file == "") == (cmd == "") {
			t.Errorf("%s: want exactly one of a log file and a command, got %q, %q", m.Name(), file, cmd)
		}
		if !strings.Contains(file+cmd, "kube-apiserver") {
			t.Errorf("%s: hint %q %q does not name the component", m.Name(), file, cmd)
		}
	}
}

type fakeHost struct {
	kubelet bool
	files   map[string]bool
	systemd bool
}

func (f fakeHost) LookPath(name string) (string, error) {
	if name == "kubelet" && f.kubelet {
		return "/usr/bin/kubelet", nil
	}
	return "", errors.New("not found")
}
func (f fakeHost) Exists(path string) bool { return f.files[path] }
func (f fakeHost) SystemdRuns() bool       { return f.systemd }

// TestResolve covers every combination of root dir ("/" or not), systemd as PID 1 or not,
// and a kubelet with a container runtime or not: auto must only pick a mode that init can start.
func TestResolve(t *testing.T) {
	t.Parallel()
	type row struct {
		root             string
		systemd, kubelet bool
		want             string
		reason           string
	}
	rows := []row{
		{"/", true, true, config.ModeStaticPod, "container runtime listens on /var/run/containerd/containerd.sock"},
		{"/", true, false, config.ModeSystemd, "systemd is PID 1"},
		{"/", false, true, config.ModeLocal, "systemd is not PID 1"},
		{"/", false, false, config.ModeLocal, "systemd is not PID 1"},
		{"/r", true, true, config.ModeLocal, "the root dir /r is not /"},
		{"/r", true, false, config.ModeLocal, "the root dir /r is not /"},
		{"/r", false, true, config.ModeLocal, "the root dir /r is not /"},
		{"/r", false, false, config.ModeLocal, "the root dir /r is not /"},
	}
	for _, r := range rows {
		for _, requested := range []string{"", config.ModeAuto} {
			p := paths.MustUnder(r.root)
			h := fakeHost{systemd: r.systemd}
			if r.kubelet {
				h.kubelet = true
				h.files = map[string]bool{p.Host("/var/run/containerd/containerd.sock"): true}
			}
			m, why, err := Resolve(requested, h, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Name(); got != r.want || !strings.Contains(why, r.reason) {
				t.Errorf("root %s, systemd %v, kubelet+runtime %v, requested %q: mode %q (%q), want %q because %q", r.root, r.systemd, r.kubelet, requested, m.Name(), why, r.want, r.reason)
			}
		}
	}
	// A kubelet without a runtime is no reason for static-pod mode.
	if m, _, _ := Resolve("", fakeHost{systemd: true, kubelet: true}, paths.MustUnder("/")); m.Name() != config.ModeSystemd {
		t.Errorf("kubelet without a container runtime: mode %q, want systemd", m.Name())
	}
	// An explicit mode is kept as asked, whatever the host, with no reason to print; init
	// reports when it cannot start it. An unknown one is refused.
	for _, name := range Names() {
		if m, why, err := Resolve(name, fakeHost{}, paths.MustUnder("/r")); err != nil || m.Name() != name || why != "" {
			t.Errorf("explicit %s: got %v, %q, %v", name, m, why, err)
		}
	}
	if _, _, err := Resolve("docker", fakeHost{}, paths.MustUnder("/")); err == nil {
		t.Error("Resolve(docker) succeeded")
	}
}
