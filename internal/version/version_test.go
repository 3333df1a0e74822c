package version

import (
	"runtime/debug"
	"testing"
)

func TestModuleVersionFollowsReplace(t *testing.T) {
	t.Parallel()
	bi := &debug.BuildInfo{Deps: []*debug.Module{
		{Path: "k8s.io/kubernetes", Version: "v1.37.2"},
		{Path: "k8s.io/api", Version: "v0.0.0", Replace: &debug.Module{Path: "k8s.io/api", Version: "v0.37.2"}},
	}}
	for path, want := range map[string]string{"k8s.io/kubernetes": "v1.37.2", "k8s.io/api": "v0.37.2", "go.etcd.io/etcd/server/v3": ""} {
		if got := ModuleVersion(bi, path); got != want {
			t.Errorf("ModuleVersion(%s) = %q, want %q", path, got, want)
		}
	}
}

func TestMajorMinor(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{"v1.37.2": {"1", "37"}, "1.36.0-rc.1": {"1", "36"}, "v1": {"", ""}} {
		if ma, mi := MajorMinor(in); ma != want[0] || mi != want[1] {
			t.Errorf("MajorMinor(%s) = %s %s, want %v", in, ma, mi, want)
		}
	}
}
