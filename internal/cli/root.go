// Package cli holds kubestrap's cobra commands and nothing else: each command parses flags, builds
// an options struct, calls a plain function of a domain package and prints the result. Progress
// goes to stderr as "[phase] message" lines, data to stdout.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// globalOptions are the persistent flags every command sees.
type globalOptions struct {
	RootDir    string
	ConfigFile string
	Verbosity  int

	Out io.Writer
	Err io.Writer
	In  io.Reader
	// UID is the effective user id, injected so tests can exercise the root-dir rules.
	UID int
	// newClusterClient builds the client that reads the cluster's configuration; nil is a real
	// client. Tests inject a fake clientset.
	newClusterClient func(kubeconfig string, timeout time.Duration) (kubeclient.Interface, error)
}

// paths validates --root-dir and returns the host paths under it.
func (g *globalOptions) paths() (paths.Paths, error) {
	return paths.New(g.RootDir, g.UID)
}

// UsageError marks a mistake in how a command was invoked; main prints usage only for these.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// IsUsageError reports whether err is a command-line usage mistake.
func IsUsageError(err error) bool {
	var u UsageError
	return errors.As(err, &u)
}

// ExitCoder lets a command choose its exit status (e.g. 2 for "nothing found").
type ExitCoder interface {
	error
	ExitCode() int
}

type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }
func (e exitError) ExitCode() int { return e.code }

// withExitCode wraps err so that main exits with code.
func withExitCode(code int, err error) error { return exitError{code: code, err: err} }

// NewRootCommand builds the kubestrap command tree writing to out and err.
func NewRootCommand(in io.Reader, out, errOut io.Writer) *cobra.Command {
	return newRootCommand(&globalOptions{In: in, Out: out, Err: errOut, UID: os.Geteuid()})
}

func newRootCommand(g *globalOptions) *cobra.Command {
	in, out, errOut := g.In, g.Out, g.Err
	v := viper.New()
	v.SetEnvPrefix("KUBESTRAP")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_")) // root-dir → KUBESTRAP_ROOT_DIR
	v.AutomaticEnv()
	v.SetDefault("root-dir", "/")

	root := &cobra.Command{
		Use:   "kubestrap",
		Short: "Bootstrap a Kubernetes control plane and its nodes, kubeadm-style, from one binary",
		Long: `kubestrap turns a host into a Kubernetes control-plane node (init), adds worker nodes (join),
undoes either (reset) and shows what the running kube-apiserver was started with
(show-apiserver-options). It reads kubeadm's configuration format (kubeadm.k8s.io/v1beta4) and
bundles the upstream kube-apiserver, kube-controller-manager, kube-scheduler and etcd.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// Flags win over KUBESTRAP_* environment variables, which win over defaults.
			if !cmd.Flags().Changed("root-dir") {
				g.RootDir = v.GetString("root-dir")
			}
			if !cmd.Flags().Changed("config") && v.GetString("config") != "" {
				g.ConfigFile = v.GetString("config")
			}
			if g.Verbosity < 0 {
				return UsageError{fmt.Errorf("-v/--verbosity %d is negative: use 0 (progress only), 1 (also files written and waits) or 2 (also API requests)", g.Verbosity)}
			}
			// Every command hands g.Err to its domain functions as their progress writer; as a
			// logx.Logger it carries the verbosity to each of them (see package logx).
			g.Err = logx.New(g.Err, g.Verbosity)
			return nil
		},
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return UsageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.RootDir, "root-dir", "/", "directory that stands for / for every host path kubestrap reads or writes (env KUBESTRAP_ROOT_DIR)")
	pf.StringVar(&g.ConfigFile, "config", "", "kubeadm.k8s.io/v1beta4 configuration file, optionally with a kubestrap.io/v1alpha1 KubestrapConfiguration document (env KUBESTRAP_CONFIG)")
	pf.IntVarP(&g.Verbosity, "verbosity", "v", 0, "detail on stderr: 0 progress only; 1 also each file written (path, mode, size; in a dry run too) and each wait (what for, how long); 2 also each API request (method, URL, status, duration)")

	root.AddCommand(
		newVersionCommand(g),
		newCompletionCommand(g),
		newConfigCommand(g),
		newInitCommand(g),
		newCertsCommand(g),
		newKubeconfigCommand(g),
		newStatusCommand(g),
		newStopCommand(g),
		newSuperviseCommand(g),
		newCSRApproverCommand(g),
		newShowAPIServerOptionsCommand(g),
		newJoinCommand(g),
		newTokenCommand(g),
		newResetCommand(g),
		newImagesCommand(g),
	)
	root.AddGroup(&cobra.Group{ID: "main", Title: "Commands:"})
	for _, c := range root.Commands() {
		c.GroupID = "main"
	}
	root.SetHelpCommandGroupID("main")
	root.SetCompletionCommandGroupID("main")
	root.AddGroup(&cobra.Group{ID: "components", Title: "Bundled components (upstream programs, upstream flags):"})
	for _, c := range bundledComponents {
		root.AddCommand(&cobra.Command{
			Use:                c.name + " [upstream flags]",
			Short:              c.short,
			GroupID:            "components",
			DisableFlagParsing: true,
			// main runs the component before this tree is built; reaching here means the binary
			// was built without the bundle.
			RunE: func(cmd *cobra.Command, args []string) error {
				return fmt.Errorf("%s is not bundled in this binary", c.name)
			},
		})
	}
	for _, c := range root.Commands() {
		markUsageErrors(c)
	}
	return root
}

// bundledComponents are dispatched by main (as "kubestrap <name> ..." or through a symlink named
// <name>); they are listed here so that help and completion show them.
var bundledComponents = []struct{ name, short string }{
	{"etcd", "Run the bundled etcd (go.etcd.io/etcd/server/v3 etcdmain)"},
	{"kube-apiserver", "Run the bundled kube-apiserver (k8s.io/kubernetes cmd/kube-apiserver)"},
	{"kube-controller-manager", "Run the bundled kube-controller-manager (k8s.io/kubernetes cmd/kube-controller-manager)"},
	{"kube-scheduler", "Run the bundled kube-scheduler (k8s.io/kubernetes cmd/kube-scheduler)"},
}

// markUsageErrors makes argument-count mistakes usage errors throughout the tree.
func markUsageErrors(c *cobra.Command) {
	if c.Args != nil {
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return UsageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
}

// Execute runs the command tree on args and returns the process exit status, printing a single
// "error: ..." line for failures and the usage text only for usage mistakes.
func Execute(args []string, in io.Reader, out, errOut io.Writer) int {
	return execute(NewRootCommand(in, out, errOut), args, errOut)
}

func execute(root *cobra.Command, args []string, errOut io.Writer) int {
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintf(errOut, "error: %v\n", err)
	if IsUsageError(err) || isCobraUsageError(err) {
		fmt.Fprintln(errOut, cmd.UsageString())
	}
	var ec ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// isCobraUsageError recognises cobra's own errors for unknown commands, which it returns as plain
// errors before any of our hooks run.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	return len(msg) > 16 && (msg[:16] == "unknown command " || msg[:14] == "unknown flag: ")
}
