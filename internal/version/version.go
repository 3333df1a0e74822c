// Package version owns kubestrap's own version and the versions of the components it bundles, as
// read from the binary's build information (so they can never drift from go.mod).
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is kubestrap's release version, set by the release build with
// -ldflags "-X github.com/kubestrap/kubestrap/internal/version.Version=v1.2.3".
var Version = "v0.1.0-dev"

// Info describes this build.
type Info struct {
	Version    string `json:"version"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd"`
}

// Module paths whose versions are the bundled components' versions.
const (
	KubernetesModule = "k8s.io/kubernetes"
	EtcdModule       = "go.etcd.io/etcd/server/v3"
)

// Get reads the build information of the running binary.
func Get() Info {
	info := Info{
		Version:   Version,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bundledKubernetes != "" || bundledEtcd != "" {
		// A front program reports the component program it carries: its own build information
		// lists neither etcd nor the components (it may still link a small k8s.io/kubernetes
		// package, which would otherwise pass for the components' version).
		info.Kubernetes, info.Etcd = bundledKubernetes, bundledEtcd
		return info
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.Kubernetes = ModuleVersion(bi, KubernetesModule)
		info.Etcd = ModuleVersion(bi, EtcdModule)
	}
	return info
}

// The bundled components' versions as recorded for an embedded component program (SetBundled).
var bundledKubernetes, bundledEtcd string

// SetBundled records the versions of the component program a front kubestrap carries embedded:
// its own build information does not list the components' modules, since it does not link them.
func SetBundled(kubernetes, etcd string) { bundledKubernetes, bundledEtcd = kubernetes, etcd }

// ModuleVersion returns the version of module path in bi ("" when absent), following replaces.
func ModuleVersion(bi *debug.BuildInfo, path string) string {
	for _, d := range bi.Deps {
		if d.Path != path {
			continue
		}
		if d.Replace != nil && d.Replace.Version != "" {
			return d.Replace.Version
		}
		return d.Version
	}
	return ""
}

// MajorMinor splits "v1.37.2" into "1" and "37".
func MajorMinor(v string) (string, string) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return "", ""
	}
	return parts[0], parts[1]
}
