package runmode

import (
	"bytes"
	"context"
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
