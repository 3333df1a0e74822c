package progstore

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// heavy are the import paths whose package initialisation the front program must not pay: the
// bundled components and their servers.
var heavy = []string{
	"github.com/kubestrap/kubestrap/internal/bundle",
	"k8s.io/kubernetes/cmd/",
	"k8s.io/kubernetes/pkg/",
	"k8s.io/apiserver/pkg/server",
	"k8s.io/controller-manager/",
	"go.etcd.io/etcd/server/",
}

func deps(t *testing.T, tags string) []string {
	t.Helper()
	args := []string{"list", "-e", "-deps"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	// -e: the front's embedded payload need not be built for its import graph to be listed.
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, "github.com/kubestrap/kubestrap/cmd/kubestrap")...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

func heavyIn(pkgs []string) []string {
	var found []string
	for _, p := range pkgs {
		for _, h := range heavy {
			if strings.HasPrefix(p, h) {
				found = append(found, p)
				break
			}
		}
	}
	return found
}

// TestFrontLinksNoComponent: the release shape's front (cmd/kubestrap built with -tags front) links none of the bundled
// components, so its commands start without their package initialisation; the monolith, the same
// check's counter-example, links them all.
func TestFrontLinksNoComponent(t *testing.T) {
	t.Parallel()
	if found := heavyIn(deps(t, "front")); len(found) > 0 {
		t.Errorf("the front program links %d component packages, e.g. %s", len(found), strings.Join(found[:min(len(found), 5)], ", "))
	}
	monolith := heavyIn(deps(t, ""))
	for _, want := range []string{"k8s.io/kubernetes/cmd/kube-apiserver/app", "go.etcd.io/etcd/server/v3/etcdmain", "github.com/kubestrap/kubestrap/internal/bundle"} {
		found := false
		for _, p := range monolith {
			found = found || p == want
		}
		if !found {
			t.Errorf("the monolith does not link %s: this check looks at the wrong import graph", want)
		}
	}
}
