package staticpod

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// TestReadCommandRoundTrip: what ReadCommand reads from a manifest Marshal wrote is the
// component's command line, for every control-plane component.
func TestReadCommandRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	p := paths.MustUnder(t.TempDir())
	for _, c := range components.ControlPlane(cfg, p) {
		pod, err := Pod(cfg, p, c)
		if err != nil {
			t.Fatal(err)
		}
		data, err := Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), c.Name+".yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadCommand(path, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		ctr := pod.Spec.Containers[0]
		if want := append(slices.Clone(ctr.Command), ctr.Args...); !slices.Equal(got.Argv(), want) || got.Image != ctr.Image {
			t.Errorf("%s: ReadCommand = %q (image %s)\nwant %q (image %s)", c.Name, got.Argv(), got.Image, want, ctr.Image)
		}
	}
	if _, err := ReadCommand(filepath.Join(t.TempDir(), "missing.yaml"), "etcd"); !os.IsNotExist(err) {
		t.Errorf("missing manifest: %v, want not-exist", err)
	}
}

func TestExpandKubeletVars(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "1", "B": "x y"}
	tests := map[string]string{
		"plain":         "plain",
		"$(A)":          "1",
		"--b=$(B),$(A)": "--b=x y,1",
		"$$(A)":         "$(A)",
		"$(C)":          "$(C)",
		"$(A":           "$(A",
		"cost $5":       "cost $5",
		"end$":          "end$",
	}
	for in, want := range tests {
		if got := expandKubeletVars(in, env); got != want {
			t.Errorf("expandKubeletVars(%q) = %q, want %q", in, got, want)
		}
	}
}
