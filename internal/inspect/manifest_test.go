package inspect

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

func TestLoadStaticPodSource(t *testing.T) {
	t.Parallel()
	p := paths.MustUnder(filepath.Join(testdataDir, "root"))
	inv, err := loadModeFile(t, runmode.StaticPod{}, p, fakeCatalog)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Source != "manifest" || inv.Label() != "manifest" || inv.Binary != "kube-apiserver" || inv.PID != 0 {
		t.Errorf("source %q binary %q pid %d", inv.Source, inv.Binary, inv.PID)
	}
	// command and args in order, $(POD_IP) expanded from the container's env.
	if got, want := argsOf(inv.Flags), strings.Join(fixtureArgs, " "); got != want {
		t.Errorf("flags\n got %s\nwant %s", got, want)
	}
	for _, f := range inv.Flags {
		if f.Origin != "manifest" || f.Unknown {
			t.Errorf("%s: origin %q unknown %v", f.Name, f.Origin, f.Unknown)
		}
	}
}

func TestLoadStaticPodSourceCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		wantBinary string
		wantArgs   string
		wantErr    string
	}{
		{
			name:       "only container, args only: the image's entrypoint runs them",
			yaml:       "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: apiserver\n    image: img:1\n    args: [\"--secure-port=1\", \"--bogus\"]\n",
			wantBinary: "img:1",
			wantArgs:   "--secure-port=1 --bogus",
		},
		{
			name:       "multi-call binary, $$ escape and unknown variable kept",
			yaml:       "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [/usr/bin/kubestrap, kube-apiserver, \"--token-auth-file=$$(HOME)/t\", \"--x=$(UNSET)\"]\n",
			wantBinary: "/usr/bin/kubestrap kube-apiserver",
			wantArgs:   "--token-auth-file=$(HOME)/t --x=$(UNSET)",
		},
		{
			name:    "no apiserver container",
			yaml:    "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n  - name: b\n",
			wantErr: "no container named kube-apiserver (containers: a, b)",
		},
		{
			name:    "not yaml",
			yaml:    "spec: [",
			wantErr: "static pod manifest",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := paths.MustUnder(t.TempDir())
			path := p.Manifest(Component)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			inv, err := loadModeFile(t, runmode.StaticPod{}, p, fakeCatalog)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inv.Binary != tt.wantBinary || argsOf(inv.Flags) != tt.wantArgs {
				t.Errorf("binary %q args %q", inv.Binary, argsOf(inv.Flags))
			}
		})
	}
	_, err := loadModeFile(t, runmode.StaticPod{}, paths.MustUnder(t.TempDir()), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing manifest: %v, want ErrNotExist", err)
	}
}
