package join

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/images"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// imagesRuntime is a container runtime holding images by name.
type imagesRuntime struct {
	has      map[string]bool
	dialed   string
	imported bool
}

func (r *imagesRuntime) Has(_ context.Context, ref string) (bool, error) { return r.has[ref], nil }
func (r *imagesRuntime) SandboxImage(context.Context) (string, error)    { return "", nil }
func (r *imagesRuntime) Import(context.Context, *images.Layout, io.Writer) error {
	r.imported = true
	return nil
}
func (r *imagesRuntime) Close() error { return nil }

// imagesJoin is a worker's join whose root has containerd's socket (when withRuntime), in a
// cluster whose ClusterConfiguration is clusterConfig.
func imagesJoin(t *testing.T, clusterConfig string, withRuntime, dryRun bool, rt *imagesRuntime, binary func() (string, error)) (*Join, *strings.Builder) {
	t.Helper()
	c := newTestCluster(t)
	cm, err := c.client.CoreV1().ConfigMaps("kube-system").Get(context.Background(), bootstrap.KubeadmConfigConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[bootstrap.ClusterConfigKey] = clusterConfig
	if _, err := c.client.CoreV1().ConfigMaps("kube-system").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if withRuntime {
		sock := filepath.Join(root, "var/run/containerd/containerd.sock")
		if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sock, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var log strings.Builder
	j := newTestJoin(t, root, c, func(o *Options) {
		o.Log = &log
		o.DryRun = dryRun
		o.Images = ImagesOptions{
			Dial: func(_ context.Context, endpoint string) (images.Runtime, error) {
				rt.dialed = endpoint
				return rt, nil
			},
			Binary: binary,
		}
	})
	return j, &log
}

const clusterWithRepo = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nimageRepository: registry.example.com/k8s\nkubernetesVersion: v1.37.2\n"

func noBinary() (string, error) { return "", errors.New("test: no binary to build from") }

// TestImagesPhase: a worker's join checks the pause image and kube-proxy's, named after the
// cluster's ClusterConfiguration, in the runtime it finds; keeps what is there; would build the
// rest from this binary (a dry run says so); leaves kube-proxy's out when the cluster disabled
// the proxy; and leaves a node without a runtime alone.
func TestImagesPhase(t *testing.T) {
	ctx := context.Background()
	proxy, pause := "registry.example.com/k8s/kube-proxy:v1.37.2", "registry.example.com/k8s/pause:3.10.2"

	t.Run("all present", func(t *testing.T) {
		rt := &imagesRuntime{has: map[string]bool{proxy: true, pause: true}}
		j, log := imagesJoin(t, clusterWithRepo, true, false, rt, noBinary)
		if err := j.Images(ctx); err != nil {
			t.Fatal(err)
		}
		if rt.dialed != "unix:///var/run/containerd/containerd.sock" {
			t.Errorf("dialed %q", rt.dialed)
		}
		for _, ref := range []string{proxy, pause} {
			if !strings.Contains(log.String(), "[images] Using existing image "+ref+"\n") {
				t.Errorf("no note that %s is kept:\n%s", ref, log)
			}
		}
		if rt.imported {
			t.Error("imported although every image is there")
		}
	})

	t.Run("kube-proxy missing, dry run", func(t *testing.T) {
		rt := &imagesRuntime{has: map[string]bool{pause: true}}
		j, log := imagesJoin(t, clusterWithRepo, true, true, rt, noBinary)
		if err := j.Images(ctx); err != nil {
			t.Fatal(err)
		}
		want := "[dryrun] Would build image " + proxy + " from this binary and import it into the container runtime at unix:///var/run/containerd/containerd.sock"
		if !strings.Contains(log.String(), want) || rt.imported {
			t.Errorf("imported %v; log lacks %q:\n%s", rt.imported, want, log)
		}
	})

	t.Run("kube-proxy missing", func(t *testing.T) {
		// The build is reached: it asks for this binary, whose refusal is the phase's error.
		rt := &imagesRuntime{has: map[string]bool{pause: true}}
		j, _ := imagesJoin(t, clusterWithRepo, true, false, rt, noBinary)
		if err := j.Images(ctx); err == nil || !strings.Contains(err.Error(), "no binary to build from") {
			t.Errorf("Images: %v, want the binary's error", err)
		}
	})

	t.Run("proxy disabled", func(t *testing.T) {
		rt := &imagesRuntime{has: map[string]bool{pause: true}}
		j, log := imagesJoin(t, clusterWithRepo+"proxy:\n  disabled: true\n", true, false, rt, noBinary)
		if err := j.Images(ctx); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(log.String(), "kube-proxy") || rt.imported {
			t.Errorf("kube-proxy's image considered although the cluster disabled the proxy (imported %v):\n%s", rt.imported, log)
		}
	})

	t.Run("no runtime", func(t *testing.T) {
		rt := &imagesRuntime{has: map[string]bool{}}
		j, log := imagesJoin(t, clusterWithRepo, false, false, rt, noBinary)
		if err := j.Images(ctx); err != nil {
			t.Fatal(err)
		}
		if rt.dialed != "" || !strings.Contains(log.String(), "[images] Skipped: no container runtime found") {
			t.Errorf("dialed %q; log:\n%s", rt.dialed, log)
		}
	})
}

// TestImagesRunIf: only a worker on the real root imports; under a root dir the phase says why it
// does not.
func TestImagesRunIf(t *testing.T) {
	c := newTestCluster(t)
	j := newTestJoin(t, t.TempDir(), c, nil)
	if ok, why := imagesRunIf(context.Background(), j); ok || !strings.Contains(why, "under the root dir") {
		t.Errorf("under a root dir: %v %q", ok, why)
	}
	j = newTestJoin(t, t.TempDir(), c, func(o *Options) { o.Paths = paths.MustUnder("/") })
	if ok, why := imagesRunIf(context.Background(), j); !ok {
		t.Errorf("a worker on the real root: skipped: %q", why)
	}
}
