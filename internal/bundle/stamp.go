package bundle

import (
	"runtime/debug"
	"strings"
	_ "unsafe" // for go:linkname

	"k8s.io/component-base/version"

	ksversion "github.com/kubestrap/kubestrap/internal/version"
)

// The Kubernetes version lives in unexported variables of k8s.io/component-base/version that
// upstream's release build sets with -ldflags -X. Without them every bundled component reports
// v0.0.0-master, which kubectl, kubelets and version-skew checks see. A plain `go build` (the
// README's, the tests', the journey check's) passes no ldflags, so kubestrap stamps them here from
// the k8s.io/kubernetes module version recorded in the binary itself; an explicit -ldflags -X still
// wins because only the untouched placeholder is replaced.

//go:linkname gitVersion k8s.io/component-base/version.gitVersion
var gitVersion string

//go:linkname gitMajor k8s.io/component-base/version.gitMajor
var gitMajor string

//go:linkname gitMinor k8s.io/component-base/version.gitMinor
var gitMinor string

//go:linkname gitTreeState k8s.io/component-base/version.gitTreeState
var gitTreeState string

//go:linkname gitCommit k8s.io/component-base/version.gitCommit
var gitCommit string

func init() {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	stamp(ksversion.ModuleVersion(bi, ksversion.KubernetesModule))
}

func stamp(v string) {
	if v == "" || (gitVersion != "" && !strings.HasPrefix(gitVersion, "v0.0.0-")) {
		return
	}
	gitVersion = v
	gitMajor, gitMinor = ksversion.MajorMinor(v)
	if gitTreeState == "" {
		gitTreeState = "clean"
	}
	if strings.HasPrefix(gitCommit, "$Format") {
		gitCommit = "" // the placeholder is not a commit; upstream's commit is not recorded in the module
	}
	// version.Get() reports a copy taken at package initialisation, before this init ran; with the
	// static version now v, setting the dynamic one to the same value is allowed and refreshes it.
	if err := version.SetDynamicVersion(v); err != nil {
		panic("stamping the bundled Kubernetes version: " + err.Error())
	}
}
