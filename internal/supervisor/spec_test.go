package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

func TestWriteSpecRoundTrip(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	spec := Spec{
		Executable: "/usr/local/bin/kubestrap",
		Components: []ComponentSpec{
			{Name: "etcd", Args: []string{"--data-dir=/var/lib/etcd"}, HealthURL: "http://127.0.0.1:2381/health"},
			{Name: "kube-apiserver", Path: "/elsewhere/kube-apiserver", Env: []string{"A=b"}},
		},
		StopTimeout: 3 * time.Second,
	}
	if err := WriteSpec(fsutil.NewDisk(nil), p, spec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(specFile(p))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", specFile(p), fi.Mode().Perm())
	}
	got, err := ReadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	want := spec
	want.Root = p.Root()
	want.MaxBackoff, want.StartTimeout = DefaultMaxBackoff, DefaultStartTimeout
	want.LogMaxBytes, want.LogMaxFiles = DefaultLogMaxBytes, DefaultLogMaxFiles
	want.Components = []ComponentSpec{spec.Components[0], spec.Components[1]}
	want.Components[0].Path = p.ComponentBinary("etcd")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadSpec = %+v\nwant %+v", got, want)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(p.StateDir(), ".*tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestReadSpecNotStarted(t *testing.T) {
	t.Parallel()
	_, err := ReadSpec(paths.MustUnder(t.TempDir()))
	if !errors.Is(err, ErrNotStarted) {
		t.Errorf("ReadSpec of an empty root: %v, want ErrNotStarted", err)
	}
}

func TestSpecValidation(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"no components", Spec{}, "no components"},
		{"another root", Spec{Root: "/elsewhere", Components: []ComponentSpec{{Name: "etcd"}}}, "belongs to root /elsewhere"},
		{"duplicate", Spec{Components: []ComponentSpec{{Name: "etcd"}, {Name: "etcd"}}}, "appears twice"},
		{"slash in name", Spec{Components: []ComponentSpec{{Name: "../etcd"}}}, "invalid component name"},
		{"supervisor's own name", Spec{Components: []ComponentSpec{{Name: "supervisor"}}}, "invalid component name"},
		{"relative path", Spec{Components: []ComponentSpec{{Name: "etcd", Path: "bin/etcd"}}}, "not absolute"},
	} {
		err := WriteSpec(fsutil.NewDisk(nil), p, tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: WriteSpec error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestLinkComponents(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(t.TempDir())
	exe := filepath.Join(t.TempDir(), "kubestrap")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.BinDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	// A link from an older kubestrap is replaced; a stranger's file is not.
	os.Symlink("/old/kubestrap", p.ComponentBinary("kube-apiserver"))
	os.WriteFile(p.ComponentBinary("kube-scheduler"), []byte("not ours"), 0o755)

	if err := LinkComponents(fsutil.NewDisk(nil), p, []string{"etcd", "kube-apiserver"}, exe); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if target, err := os.Readlink(p.ComponentBinary(name)); err != nil || target != exe {
			t.Errorf("%s -> %q (%v), want %s", name, target, err, exe)
		}
	}
	// Idempotent.
	if err := LinkComponents(fsutil.NewDisk(nil), p, []string{"etcd"}, exe); err != nil {
		t.Errorf("linking again: %v", err)
	}
	err := LinkComponents(fsutil.NewDisk(nil), p, []string{"kube-scheduler"}, exe)
	if err == nil || !strings.Contains(err.Error(), "refusing to replace") {
		t.Errorf("linking over a foreign file: %v, want a refusal", err)
	}
	if data, _ := os.ReadFile(p.ComponentBinary("kube-scheduler")); string(data) != "not ours" {
		t.Errorf("the foreign file was changed: %q", data)
	}
	// A hard link of the executable itself is ours to replace.
	os.Link(exe, p.ComponentBinary("kube-controller-manager"))
	if err := LinkComponents(fsutil.NewDisk(nil), p, []string{"kube-controller-manager"}, exe); err != nil {
		t.Errorf("replacing a hard link of the executable: %v", err)
	}
	if err := LinkComponents(fsutil.NewDisk(nil), p, []string{"etcd"}, "relative/kubestrap"); err == nil {
		t.Error("a relative executable path was accepted")
	}
	if entries, _ := filepath.Glob(filepath.Join(p.BinDir(), "*.tmp-*")); len(entries) > 0 {
		t.Errorf("temporary links left: %v", entries)
	}
}
