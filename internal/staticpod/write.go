package staticpod

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// Options controls Write.
type Options struct {
	// Files writes the manifest; nil is the disk, reporting on Log. A dry-run writer prints the
	// full manifest instead.
	Files fsutil.Writer
	// Log receives kubeadm-style progress lines; nil discards them.
	Log io.Writer
}

// Manifest file and directory modes (kubeadm's WriteStaticPodToDisk): the manifests name every
// key file of the control plane, and the kubelet runs whatever appears in the directory.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// Marshal renders pod as the YAML the kubelet reads.
func Marshal(pod *corev1.Pod) ([]byte, error) {
	b, err := yaml.Marshal(pod)
	if err != nil {
		return nil, fmt.Errorf("render static pod %s: %w", pod.Name, err)
	}
	return b, nil
}

// Write writes pod to <root>/etc/kubernetes/manifests/<name>.yaml, atomically so the kubelet,
// which watches the directory, never reads half a manifest. A manifest with the same content is
// kept; a different one is replaced, as kubeadm does, because the configuration is the source of
// the manifest and the kubelet restarts the pod on change.
func Write(p paths.Paths, pod *corev1.Pod, o Options) error {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	data, err := Marshal(pod)
	if err != nil {
		return err
	}
	path := p.Manifest(pod.Name)
	prefix := "[control-plane]"
	if pod.Name == components.EtcdName {
		prefix = "[etcd]"
	}
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		fmt.Fprintf(log, "%s Using existing static Pod manifest for %q in %q\n", prefix, pod.Name, filepath.Dir(path))
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read static pod manifest %s: %w", path, err)
	}
	verb := "Creating"
	if err == nil {
		verb = "Updating"
	}
	fmt.Fprintf(log, "%s %s static Pod manifest for %q in %q\n", prefix, verb, pod.Name, filepath.Dir(path))
	w := fsutil.OrDisk(o.Files, o.Log)
	// The manifests directory is 0700 (its parents 0755); an existing one keeps its mode, which
	// the operator may have chosen.
	if err := w.Mkdir(filepath.Dir(path), DirMode); err != nil {
		return err
	}
	return w.WriteFile(path, data, FileMode, fsutil.ShowContent())
}
