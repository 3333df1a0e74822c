package progstore

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// heavy are the import paths whose package initialisation the front program must not pay: the
// bundled components and their servers. Any other k8s.io/kubernetes package the front links must
// be a leaf utility that imports the standard library only (kubeadm's pubkeypin, which
// internal/pki uses, is one).
var heavy = []string{
	"github.com/kubestrap/kubestrap/internal/bundle",
	"k8s.io/kubernetes/cmd/kube-",
	"k8s.io/kubernetes/pkg/",
	"k8s.io/apiserver/pkg/server",
	"k8s.io/controller-manager/",
	"go.etcd.io/etcd/server/",
}

type pkg struct {
	path     string
	standard bool
	imports  []string
}

func deps(t *testing.T, tags string) []pkg {
	t.Helper()
	args := []string{"list", "-e", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{join .Imports \",\"}}"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	// -e: the front's embedded payload need not be built for its import graph to be listed.
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, "github.com/kubestrap/kubestrap/cmd/kubestrap")...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		p := pkg{path: f[0], standard: f[1] == "true"}
		if len(f) > 2 {
			p.imports = strings.Split(f[2], ",")
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// heavyIn lists the packages of pkgs that are heavy, or from k8s.io/kubernetes and import
// anything but the standard library and each other.
func heavyIn(pkgs []pkg) []string {
	standard := map[string]bool{}
	for _, p := range pkgs {
		standard[p.path] = p.standard
	}
	var found []string
	for _, p := range pkgs {
		for _, h := range heavy {
			if strings.HasPrefix(p.path, h) {
				found = append(found, p.path)
				break
			}
		}
		if !strings.HasPrefix(p.path, "k8s.io/kubernetes/") || slices.Contains(found, p.path) {
			continue
		}
		for _, imp := range p.imports {
			if !standard[imp] && !strings.HasPrefix(imp, "k8s.io/kubernetes/cmd/kubeadm/app/util/") {
				found = append(found, p.path+" (imports "+imp+")")
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

// perCommand are packages that are not components but whose start-up every command of the front
// would pay (measured, see package kubeclient and the README's start-up row): client-go's
// clientset of every API group with its scheme registration, and the informer factory over it.
var perCommand = []string{
	"k8s.io/client-go/kubernetes",
	"k8s.io/client-go/informers",
}

// TestFrontLinksNoClientset: the front reaches the API through package kubeclient only; the
// monolith, which links the components, is the check's counter-example.
func TestFrontLinksNoClientset(t *testing.T) {
	t.Parallel()
	in := func(pkgs []pkg) []string {
		var found []string
		for _, p := range pkgs {
			for _, h := range perCommand {
				if p.path == h || strings.HasPrefix(p.path, h+"/") {
					found = append(found, p.path)
					break
				}
			}
		}
		return found
	}
	if found := in(deps(t, "front")); len(found) > 0 {
		t.Errorf("the front program links %d packages every command pays for, e.g. %s", len(found), strings.Join(found[:min(len(found), 5)], ", "))
	}
	if !slices.Contains(in(deps(t, "")), "k8s.io/client-go/kubernetes/scheme") {
		t.Error("the monolith does not link k8s.io/client-go/kubernetes/scheme: this check looks at the wrong import graph")
	}
}
