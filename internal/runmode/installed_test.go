package runmode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/staticpod"
	"github.com/kubestrap/kubestrap/internal/supervisor"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// install writes what init leaves under p in mode, with each mode's own renderer: the
// supervisor's spec, the static pod manifests, or the systemd units.
func install(t *testing.T, p paths.Paths, mode string) []components.Component {
	t.Helper()
	cfg := configtest.Init("10.0.0.1", "node1")
	cps := components.ControlPlane(cfg, p)
	write := func(path string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	switch mode {
	case config.ModeLocal:
		if err := supervisor.WriteSpec(fsutil.NewDisk(nil), p, SupervisorSpec(cfg, p, cps, "/usr/bin/kubestrap")); err != nil {
			t.Fatal(err)
		}
	case config.ModeStaticPod:
		for _, c := range cps {
			pod, err := staticpod.Pod(cfg, p, c)
			if err != nil {
				t.Fatal(err)
			}
			data, err := staticpod.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			write(p.Manifest(c.Name), data)
		}
	case config.ModeSystemd:
		for _, c := range cps {
			data, err := systemd.Render(cfg, p, c)
			if err != nil {
				t.Fatal(err)
			}
			write(p.SystemdUnit(systemd.UnitName(c.Name)), data)
		}
	default:
		t.Fatalf("no installer for mode %q", mode)
	}
	return cps
}

// TestDiscover: every mode finds exactly what it installed, with the argument lists the builder
// made, and nothing of the other modes'; an empty root has nothing of any mode.
func TestDiscover(t *testing.T) {
	t.Parallel()
	for _, m := range registry {
		t.Run(m.Name(), func(t *testing.T) {
			t.Parallel()
			p := paths.MustUnder(t.TempDir())
			if got := DiscoverAll(p); len(got) != 0 {
				t.Fatalf("empty root: %+v", got)
			}
			cps := install(t, p, m.Name())
			all := DiscoverAll(p)
			if len(all) != 1 || all[0].Mode != m.Name() {
				t.Fatalf("DiscoverAll = %+v, want only %s", all, m.Name())
			}
			in := all[0]
			if len(in.Warnings) > 0 {
				t.Errorf("warnings: %v", in.Warnings)
			}
			if !slices.Equal(in.Names(), ControlPlane) {
				t.Fatalf("components %v, want %v", in.Names(), ControlPlane)
			}
			for i, f := range in.Components {
				if !slices.Equal(f.Argv[1:], cps[i].Args) {
					t.Errorf("%s: args %q\nwant %q", f.Name, f.Argv[1:], cps[i].Args)
				}
				if f.Source == "" || !strings.HasPrefix(f.Source, p.Root()) {
					t.Errorf("%s: source %q is not a file under the root", f.Name, f.Source)
				}
			}
			if in.Contained != (m.Name() == config.ModeStaticPod) {
				t.Errorf("Contained = %v", in.Contained)
			}
			// Installed is not running: init starts over rather than resuming.
			if r := m.FindRunning(p); r.Found || r.Healthy {
				t.Errorf("FindRunning with nothing started = %+v", r)
			}
		})
	}
}

// TestDiscoverUnreadable: a file of a mode that cannot be read is reported, and the mode still
// counts as installed (reset must stop and clean it).
func TestDiscoverUnreadable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode, file, data string
	}{
		{config.ModeLocal, "var/lib/kubestrap/supervisor.json", "{"},
		{config.ModeStaticPod, "etc/kubernetes/manifests/etcd.yaml", "spec: ["},
		{config.ModeSystemd, "etc/systemd/system/etcd.service", "# Written by kubestrap\n[Service]\nExecStart=/bin/etcd \"--a\n"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			p := paths.MustUnder(t.TempDir())
			path := filepath.Join(p.Root(), tc.file)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			m, _ := Get(tc.mode)
			in, ok := m.Discover(p)
			if !ok || len(in.Warnings) != 1 || len(in.Components) != 0 {
				t.Errorf("Discover = %+v, %v; want installed, one warning, no component", in, ok)
			}
		})
	}
}

// TestSystemdDiscoverIgnoresForeignUnits: a unit named like kubestrap's that kubestrap did not
// write is not systemd mode's.
func TestSystemdDiscoverIgnoresForeignUnits(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	path := p.SystemdUnit("etcd.service")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("[Service]\nExecStart=/usr/bin/etcd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if in, ok := (Systemd{}).Discover(p); ok {
		t.Errorf("found %+v in the distribution's etcd.service", in)
	}
}

// fakeStopper records what the modes ask of the host.
type fakeStopper struct{ calls []string }

func (f *fakeStopper) StopUnits(_ context.Context, units []string) {
	f.calls = append(f.calls, "units "+strings.Join(units, " "))
}
func (f *fakeStopper) StopStaticPods(_ context.Context, in Installed) error {
	f.calls = append(f.calls, "static pods "+strings.Join(in.Names(), " "))
	return nil
}
func (f *fakeStopper) StopLocal() error { f.calls = append(f.calls, "local"); return nil }

// TestStop: each mode stops what it found, in reverse start order where it has an order.
func TestStop(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		config.ModeLocal:     {"local"},
		config.ModeStaticPod: {"static pods etcd kube-apiserver kube-controller-manager kube-scheduler kubestrap-csr-approver"},
		config.ModeSystemd:   {"units kubestrap-csr-approver.service kube-scheduler.service kube-controller-manager.service kube-apiserver.service etcd.service"},
	}
	for _, m := range registry {
		p := paths.MustUnder(t.TempDir())
		install(t, p, m.Name())
		in, ok := m.Discover(p)
		if !ok {
			t.Fatalf("%s: nothing discovered", m.Name())
		}
		var s fakeStopper
		if err := m.Stop(context.Background(), in, &s); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.calls, want[m.Name()]) {
			t.Errorf("%s: Stop asked %q, want %q", m.Name(), s.calls, want[m.Name()])
		}
	}
}

// TestStatus: local mode reports the supervisor's state under its own name; the others say which
// command reports on them; a root with nothing says so.
func TestStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := Status(ctx, paths.MustUnder(t.TempDir())); !errors.Is(err, ErrNothingInstalled) {
		t.Errorf("empty root: %v, want ErrNothingInstalled", err)
	}
	p := paths.MustUnder(t.TempDir())
	install(t, p, config.ModeLocal)
	rep, err := Status(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := rep.(supervisor.Report); !ok || r.Mode != config.ModeLocal || len(r.Components) != len(ControlPlane) || len(rep.Problems()) == 0 {
		t.Errorf("local status %+v: want the supervisor's report, mode local, nothing running", rep)
	}
	for mode, cmd := range map[string]string{config.ModeStaticPod: "crictl ps", config.ModeSystemd: "systemctl status etcd.service"} {
		p := paths.MustUnder(t.TempDir())
		install(t, p, mode)
		// systemd mode links the components in the bin dir local mode uses too (systemd.WriteUnit);
		// that alone must not make status report on a local control plane.
		if err := os.MkdirAll(p.BinDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Status(ctx, p); err == nil || !strings.Contains(err.Error(), cmd) {
			t.Errorf("%s: status error %v, want one naming %q", mode, err, cmd)
		}
	}
}

// TestSources: the file modes offer show-apiserver-options their file, read as the mode runs it;
// local mode offers none.
func TestSources(t *testing.T) {
	t.Parallel()
	var names []string
	for _, src := range Sources(paths.MustUnder("/r"), components.APIServerName) {
		names = append(names, src.Name)
	}
	if !slices.Equal(names, []string{"manifest", "systemd"}) {
		t.Errorf("sources %v", names)
	}
	for _, mode := range []string{config.ModeStaticPod, config.ModeSystemd} {
		p := paths.MustUnder(t.TempDir())
		cps := install(t, p, mode)
		m, _ := Get(mode)
		src, ok := m.Source(p, components.APIServerName)
		if !ok {
			t.Fatalf("%s: no source", mode)
		}
		cl, err := src.Read()
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, w := range cl.Words[1:] {
			args = append(args, w.Text)
		}
		if cl.Path != src.Path || !slices.Equal(args, cps[1].Args) {
			t.Errorf("%s: %s read %q\nwant %q", mode, cl.Path, args, cps[1].Args)
		}
	}
}
