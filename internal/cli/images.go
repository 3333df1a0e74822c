package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/images"
)

type imagesOptions struct {
	kubernetesVersion string
	binary            string
	pauseBinary       string
	output            string
	containerd        string
}

func newImagesCommand(g *globalOptions) *cobra.Command {
	o := &imagesOptions{}
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List, export and import the control-plane images built from this binary (no registry needed)",
		Long: `Static-pod mode runs the control plane from container images. These commands build them from a
static kubestrap binary, which already holds the components: one layer with the binary at
/usr/local/bin/kubestrap, each image's entrypoint /usr/local/bin/<component>. They carry the
names the static-pod manifests use (imageRepository and kubernetesVersion from --config, as in
kubeadm) and labels that say they are kubestrap-built from unmodified upstream code.

The running binary is used when it is complete and statically linked (the release build's
component program, extracted, when this is the front program); otherwise pass one with
--binary (CGO_ENABLED=0 go build ./cmd/kubestrap). The pause image is built only with
--pause-binary (a static build of k8s.io/kubernetes' build/pause/linux/pause.c).`,
	}
	cmd.AddCommand(newImagesListCommand(g, o), newImagesExportCommand(g, o), newImagesImportCommand(g, o))
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.kubernetesVersion, "kubernetes-version", "", "Kubernetes version in the image tags (default: the bundled one)")
	return cmd
}

func addImagesSourceFlags(cmd *cobra.Command, o *imagesOptions) {
	cmd.Flags().StringVar(&o.binary, "binary", "", "complete, statically linked kubestrap binary to build the images from (default: this one)")
	cmd.Flags().StringVar(&o.pauseBinary, "pause-binary", "", "static pause binary: also build the pause image")
}

func newImagesListCommand(g *globalOptions, o *imagesOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Print the images static-pod mode runs, as the manifests name them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := imagesConfig(g, o)
			if err != nil {
				return err
			}
			list, err := images.List(cfg, true)
			if err != nil {
				return err
			}
			for _, im := range list {
				fmt.Fprintln(g.Out, im.Ref)
			}
			return nil
		},
	}
}

func newImagesExportCommand(g *globalOptions, o *imagesOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "export -o FILE",
		Short:   "Build the images and write them as one OCI image-layout archive",
		Example: "  kubestrap images export -o kubestrap-images.tar --binary ./kubestrap-static --pause-binary ./pause",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output == "" {
				return UsageError{fmt.Errorf("export needs -o FILE, the archive to write")}
			}
			cfg, src, err := imagesSource(g, o, "")
			if err != nil {
				return err
			}
			return images.Export(cfg, src, o.output, g.Err)
		},
	}
	addImagesSourceFlags(cmd, o)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "archive to write")
	return cmd
}

func newImagesImportCommand(g *globalOptions, o *imagesOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import [ARCHIVE]",
		Short: "Import the images into containerd's k8s.io namespace, from an archive or built from the binary",
		Example: `  kubestrap images import kubestrap-images.tar
  kubestrap images import --binary ./kubestrap-static --pause-binary ./pause --containerd-address /run/containerd/containerd.sock`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			archive := ""
			if len(args) == 1 {
				archive = args[0]
				if o.binary != "" || o.pauseBinary != "" {
					return UsageError{fmt.Errorf("an archive and --binary/--pause-binary exclude each other: the archive already holds the images")}
				}
			}
			cfg, src, err := imagesSource(g, o, archive)
			if err != nil {
				return err
			}
			return images.ImportInto(context.Background(), cfg, src, o.containerd, g.Err)
		},
	}
	addImagesSourceFlags(cmd, o)
	cmd.Flags().StringVar(&o.containerd, "containerd-address", images.DefaultContainerdSocket, "containerd's socket")
	return cmd
}

func imagesConfig(g *globalOptions, o *imagesOptions) (*config.Config, error) {
	return config.LoadInit(g.ConfigFile, config.Overrides{KubernetesVersion: o.kubernetesVersion}, config.SystemHost{})
}

// imagesSource loads the configuration and decides what the images come from; the running
// binary is the default, checked up front so a dynamic or front binary fails before any work.
func imagesSource(g *globalOptions, o *imagesOptions, archive string) (*config.Config, images.Source, error) {
	cfg, err := imagesConfig(g, o)
	if err != nil {
		return nil, images.Source{}, err
	}
	src := images.Source{Binary: o.binary, PauseBinary: o.pauseBinary, Archive: archive}
	if archive != "" {
		return cfg, src, nil
	}
	if src.Binary == "" {
		// This binary: the component program a front carries, or the running monolith.
		if src.Binary, err = images.ThisBinary(); err != nil {
			return nil, images.Source{}, fmt.Errorf("%w; or pass a static binary with --binary", err)
		}
	} else if err := images.CheckBinary(src.Binary); err != nil {
		return nil, images.Source{}, fmt.Errorf("%w, and pass it with --binary", err)
	}
	return cfg, src, nil
}
