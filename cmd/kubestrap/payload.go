//go:build !front

package main

import (
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/kubestrap/kubestrap/internal/bundle"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/progstore"
	"github.com/kubestrap/kubestrap/internal/version"
)

// payloadMetadataCommand makes the files the front embeds next to the component program
// (hack/build.sh runs it): what the front must know without executing the program.
const payloadMetadataCommand = "__payload-metadata"

// Files of a payload directory (cmd/kubestrap/payload/<os>-<arch>/), embedded by the front.
const (
	payloadManifestFile = "manifest.json"
	payloadFlagsFile    = "apiserver-flags.json"
)

// writePayloadMetadata writes, into dir, the manifest of the component program at program (its
// SHA-256, the component names, the bundled versions read from the program's own build
// information, so a cross-compiled program is described correctly) and kube-apiserver's flag
// catalog (show-apiserver-options needs it on every run, so it is data in the front, not a
// run of the program). This binary must be built from the same tree as program: the names and
// the catalog come from its own bundle.
func writePayloadMetadata(program, dir string) error {
	sum, err := progstore.HashFile(program)
	if err != nil {
		return fmt.Errorf("read %s: %w", program, err)
	}
	bi, err := buildinfo.ReadFile(program)
	if err != nil {
		return fmt.Errorf("read the build information of %s: %w", program, err)
	}
	m := progstore.Manifest{
		SHA256:     hex.EncodeToString(sum[:]),
		Kubernetes: version.ModuleVersion(bi, version.KubernetesModule),
		Etcd:       version.ModuleVersion(bi, version.EtcdModule),
		Components: bundle.Names(),
	}
	if m.Kubernetes == "" || m.Etcd == "" {
		return fmt.Errorf("%s does not link %s and %s: it is not a component program", program, version.KubernetesModule, version.EtcdModule)
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	flags, err := json.Marshal(bundle.APIServerFlags())
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, payloadManifestFile), append(manifest, '\n'), 0o644); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, payloadFlagsFile), flags, 0o644)
}
