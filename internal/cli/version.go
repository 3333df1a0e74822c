package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/version"
)

func newVersionCommand(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of kubestrap and of the components it bundles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printVersion(g, version.Get(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: short, json or yaml")
	return cmd
}

func printVersion(g *globalOptions, info version.Info, output string) error {
	switch output {
	case "":
		fmt.Fprintf(g.Out, "kubestrap %s (%s, %s)\n", info.Version, info.GoVersion, info.Platform)
		fmt.Fprintf(g.Out, "bundled: kube-apiserver, kube-controller-manager, kube-scheduler %s; etcd %s\n",
			orUnknown(info.Kubernetes), orUnknown(info.Etcd))
	case "short":
		fmt.Fprintln(g.Out, info.Version)
	case "json":
		b, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(g.Out, string(b))
	case "yaml":
		b, err := yaml.Marshal(info)
		if err != nil {
			return err
		}
		fmt.Fprint(g.Out, string(b))
	default:
		return UsageError{fmt.Errorf("unknown output format %q: use short, json or yaml", output)}
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown: binary built without module information)"
	}
	return s
}

func newCompletionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a completion script for bash, zsh or fish. For example:

  source <(kubestrap completion bash)`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(g.Out, true)
			case "zsh":
				return root.GenZshCompletion(g.Out)
			case "fish":
				return root.GenFishCompletion(g.Out, true)
			}
			return UsageError{fmt.Errorf("unsupported shell %q: use bash, zsh or fish", args[0])}
		},
	}
}
