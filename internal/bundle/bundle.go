// Package bundle owns the upstream programs compiled into kubestrap: kube-apiserver,
// kube-controller-manager, kube-scheduler and kube-proxy from k8s.io/kubernetes, and etcd from
// etcdmain. It is the only package that imports them, so every other package builds and tests
// without their weight. It runs them unmodified, exactly as their own main functions would.
package bundle

import (
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json, as upstream's mains register it
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kubeproxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/kubestrap/kubestrap/internal/inspect"
)

// Component names, as the symlinks and the first argument spell them.
const (
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Etcd              = "etcd"
	KubeProxy         = "kube-proxy"
)

// components is the table of bundled programs: a name and how to run it with os.Args already
// set. Adding a program is one line here (and its import).
var components = []struct {
	name string
	run  func(argv []string) int
}{
	{Etcd, func(argv []string) int {
		// etcdmain exits the process itself on error; returning means a clean stop.
		etcdmain.Main(argv)
		return 0
	}},
	{APIServer, func([]string) int { return cli.Run(apiserver.NewAPIServerCommand()) }},
	{ControllerManager, func([]string) int { return cli.Run(kcm.NewControllerManagerCommand()) }},
	{Scheduler, func([]string) int { return cli.Run(scheduler.NewSchedulerCommand()) }},
	// kube-proxy is not run by kubestrap on the host: the kube-proxy addon's DaemonSet runs it
	// from an image, and bundling it lets an image built from this binary serve as that image.
	{KubeProxy, func([]string) int { return cli.Run(kubeproxy.NewProxyCommand()) }},
}

// Names lists the bundled components.
func Names() []string {
	out := make([]string, 0, len(components))
	for _, c := range components {
		out = append(out, c.name)
	}
	return out
}

// IsComponent reports whether name is a bundled component.
func IsComponent(name string) bool {
	for _, c := range components {
		if c.name == name {
			return true
		}
	}
	return false
}

// Run runs component with argv (argv[0] is the program name, as os.Args) and returns its exit
// status, 127 for an unknown component. The upstream commands read os.Args themselves, so
// os.Args is set to argv first.
func Run(component string, argv []string) int {
	for _, c := range components {
		if c.name == component {
			os.Args = argv
			return c.run(argv)
		}
	}
	return 127
}

// APIServerFlags is the option catalog of the bundled kube-apiserver: every flag with its type,
// default and one-line help, read from the upstream command's own flag set.
func APIServerFlags() []inspect.FlagInfo {
	// The upstream constructor reads flags such as --version from pflag's global set, which main
	// swaps out for the kubestrap CLI; hand it the components' set while it builds.
	saved := pflag.CommandLine
	pflag.CommandLine = componentFlags
	defer func() { pflag.CommandLine = saved }()
	return flagCatalog(apiserver.NewAPIServerCommand())
}

// componentFlags is pflag's global set as the upstream packages left it at initialisation.
var componentFlags = pflag.CommandLine

func flagCatalog(cmd *cobra.Command) []inspect.FlagInfo {
	var out []inspect.FlagInfo
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		usage := strings.TrimSpace(f.Usage)
		if i := strings.IndexAny(usage, "\n"); i >= 0 {
			usage = usage[:i]
		}
		typ := f.Value.Type()
		if f.NoOptDefVal != "" && typ != "bool" {
			// e.g. --version[=raw]: takes no value on the command line, like a bool
			typ = "bool"
		}
		out = append(out, inspect.FlagInfo{Name: f.Name, Type: typ, Default: f.DefValue, Usage: usage})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
