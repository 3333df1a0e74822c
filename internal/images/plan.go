package images

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/kubestrap/kubestrap/internal/addons"
	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/staticpod"
)

// PauseVersion is the pause image tag kubeadm v1.37.2 uses (its constants.PauseVersion); the
// runtime's sandbox image must carry this name for the kubelet's pods to start air-gapped.
const PauseVersion = "3.10.2"

// List returns the images a static-pod control plane of cfg runs (etcd with a local etcd only,
// kubestrap's CSR approver unless disabled) with the names its manifests use, kube-proxy's as
// the addon names it (unless proxy.disabled), and the pause image under the same repository (as
// kubeadm names it) when withPause.
func List(cfg *config.Config, withPause bool) ([]Image, error) {
	var out []Image
	var names []string
	if cfg.LocalEtcd() {
		// With external etcd no etcd manifest is written, so no etcd image runs.
		names = append(names, components.EtcdName)
	}
	names = append(names, components.APIServerName, components.ControllerManagerName, components.SchedulerName)
	if !cfg.Kubestrap.CSRApprover.Disabled {
		// kubestrap's own component runs as a static pod too; no registry serves its image.
		names = append(names, components.CSRApproverName)
	}
	for _, c := range names {
		ref, err := staticpod.Image(cfg, c)
		if err != nil {
			return nil, err
		}
		out = append(out, Image{Ref: ref, Component: c})
	}
	return append(out, nodeImages(cfg, withPause)...), nil
}

// WorkerList returns the images a worker's kubelet runs before any workload: kube-proxy's, as the
// addon names it (unless proxy.disabled), and the pause image of its pod sandboxes.
func WorkerList(cfg *config.Config) []Image { return nodeImages(cfg, true) }

// nodeImages are the images every node runs, control plane or worker.
func nodeImages(cfg *config.Config, withPause bool) []Image {
	var out []Image
	if !cfg.Cluster.Proxy.Disabled {
		// The kube-proxy addon's DaemonSet runs on every node.
		out = append(out, Image{Ref: addons.KubeProxyImage(cfg), Component: KubeProxyComponent})
	}
	if withPause {
		out = append(out, Image{Ref: PauseImage(cfg), Component: PauseComponent})
	}
	return out
}

// PauseImage is the pause image's name for cfg: <imageRepository>/pause:<PauseVersion>.
func PauseImage(cfg *config.Config) string {
	repo := cfg.Cluster.ImageRepository
	if repo == "" {
		repo = config.DefaultImageRepository
	}
	return repo + "/pause:" + PauseVersion
}

// Source says where the images come from: a binary (and optionally a pause binary) to build them
// from, or an archive that `export` wrote.
type Source struct {
	Binary      string
	PauseBinary string
	Archive     string
}

// Load builds (or reads) the images of cfg. The returned cleanup removes the build's work
// directory and must be called once the layout is no longer used.
func Load(cfg *config.Config, src Source) (l *Layout, cleanup func(), err error) {
	if src.Archive != "" {
		l, err := ReadArchive(src.Archive)
		return l, func() {}, err
	}
	if src.Binary == "" {
		return nil, nil, fmt.Errorf("no binary to build the images from")
	}
	list, err := List(cfg, src.PauseBinary != "")
	if err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "kubestrap-images-")
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() { os.RemoveAll(work) }
	v := cfg.Cluster.KubernetesVersion
	if v == "" {
		v = config.BundledKubernetesVersion
	}
	l, err = Build(Options{Binary: src.Binary, PauseBinary: src.PauseBinary, Images: list, KubernetesVersion: v, WorkDir: work})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return l, cleanup, nil
}

// Export builds the images of cfg from src and writes them as one OCI archive at path,
// atomically: a failed export leaves no partial archive.
func Export(cfg *config.Config, src Source, path string, progress io.Writer) error {
	l, cleanup, err := Load(cfg, src)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := fsutil.WriteStreamAtomic(path, 0o644, func(w io.Writer) error { return WriteArchive(w, l) }, fsutil.Log(progress)); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	for _, m := range l.Index.Manifests {
		fmt.Fprintf(progress, "[images] Exported %s\n", m.Annotations[AnnotationImageName])
	}
	return nil
}

// ImportInto loads the images of cfg from src and imports them into containerd at socket.
func ImportInto(ctx context.Context, cfg *config.Config, src Source, socket string, progress io.Writer) error {
	l, cleanup, err := Load(cfg, src)
	if err != nil {
		return err
	}
	defer cleanup()
	return Import(ctx, socket, l, progress)
}
