package initflow

// The images phase: in static-pod mode the kubelet runs the control plane from images, which a
// node without registry access can only get from this binary (see internal/images).

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/images"
	"github.com/kubestrap/kubestrap/internal/runmode"
	"github.com/kubestrap/kubestrap/internal/workflow"
)

// ImagesOptions are the images phase's inputs beyond the configuration.
type ImagesOptions = images.PhaseOptions

// imagesRunIf: only static-pod mode runs images, and only on the real root, where the runtime at
// nodeRegistration.criSocket is the one the node's kubelet uses. Under another root dir nothing of
// the machine's runtime belongs to the root (reset treats it so too).
func imagesRunIf(ctx context.Context, d *Data) (bool, string) {
	if d.mode.Name() != config.ModeStaticPod {
		if workflow.WholeRun(ctx) {
			return false, ""
		}
		return false, fmt.Sprintf("[images] Skipped: mode %q runs the components from this binary, not from images", d.mode.Name())
	}
	if !d.p.IsRealRoot() {
		return false, fmt.Sprintf("[images] Skipped: under the root dir %s no kubelet of this machine runs the manifests, so no container runtime is asked for their images; import them where a kubelet runs with 'kubestrap images import'", d.p.Root())
	}
	return true, ""
}

// runImages imports into the runtime the images it lacks, built from this binary, so that the
// kubelet finds every image the manifests name and the pod sandbox image without a registry.
func runImages(ctx context.Context, d *Data) error {
	endpoint, err := criEndpoint(d.cfg.Init.NodeRegistration.CRISocket, runmode.FoundCRIEndpoints(d.p, runmode.RealHost{}.Exists))
	if err != nil {
		return err
	}
	return images.Ensure(ctx, d.cfg, d.images.Ensure(endpoint, d.dryRun, d.log, func(err error) error {
		return fmt.Errorf("static-pod mode builds the images the runtime lacks from this binary, which cannot run in an image: %w; run init with such a binary, or import the images first with 'kubestrap images import' (a node whose runtime pulls from a registry can skip this phase: --skip-phases images)", err)
	}))
}

// criEndpoint is runmode.CRIEndpoint, for which no runtime at all is an error here: static-pod
// mode runs the control plane in the kubelet's container runtime.
func criEndpoint(configured string, found []string) (string, error) {
	endpoint, err := runmode.CRIEndpoint(configured, found)
	if err == nil && endpoint == "" {
		return "", fmt.Errorf("no container runtime found (looked for %s): static-pod mode runs the control plane in the kubelet's container runtime; start one, or set nodeRegistration.criSocket to its socket", strings.Join(runmode.CRISockets, ", "))
	}
	return endpoint, err
}
