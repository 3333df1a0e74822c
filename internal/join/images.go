package join

// The images phase of a worker's join: the images its kubelet runs before any workload (the pod
// sandboxes' pause image, and kube-proxy's unless the cluster disabled the proxy), imported into
// the node's container runtime where it lacks them, built from this binary by the same code as
// init's images phase (images.EnsureWorker), so that a node with no registry access runs pods.

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/images"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// ImagesOptions are the images phase's inputs beyond the configuration.
type ImagesOptions = images.PhaseOptions

// imagesRunIf: a worker on the real root. Under another root dir no kubelet of this machine runs
// the node, so its runtime is not the node's (init's images phase and reset say the same); a
// control-plane join's images (the control plane's too) are not imported by join.
func imagesRunIf(_ context.Context, j *Join) (bool, string) {
	if j.IsControlPlane() {
		return false, "[images] Skipped: a control-plane join does not import images; import them first with 'kubestrap images import' where the runtime pulls from no registry"
	}
	if !j.o.Paths.IsRealRoot() {
		return false, fmt.Sprintf("[images] Skipped: under the root dir %s no kubelet of this machine runs the node, so no container runtime is asked for its images; import them where a kubelet runs with 'kubestrap images import'", j.o.Paths.Root())
	}
	return true, ""
}

// Images imports the worker's images its container runtime lacks. A node with no runtime socket
// at all is left alone with a note: there is nothing to import into.
func (j *Join) Images(ctx context.Context) error {
	endpoint, err := j.criEndpoint()
	if err != nil || endpoint == "" {
		return err
	}
	if err := j.Discover(ctx); err != nil {
		return err
	}
	cfg, err := j.clusterImagesConfig(ctx)
	if err != nil {
		return err
	}
	return images.EnsureWorker(ctx, cfg, j.o.Images.Ensure(endpoint, j.o.DryRun, j.log, func(err error) error {
		return fmt.Errorf("join builds the images the runtime lacks (the pause image, kube-proxy's) from this binary, which cannot run in an image: %w; run join with such a binary, or import the images first with 'kubestrap images import' (a node whose runtime pulls from a registry can skip this phase: --skip-phases images)", err)
	}))
}

// criEndpoint is runmode.CRIEndpoint; "" (with a note) when the host has no runtime.
func (j *Join) criEndpoint() (string, error) {
	endpoint, err := runmode.CRIEndpoint(j.o.Config.Join.NodeRegistration.CRISocket, runmode.FoundCRIEndpoints(j.o.Paths, runmode.RealHost{}.Exists))
	if err == nil && endpoint == "" {
		j.logf("[images] Skipped: no container runtime found (looked for %s), so there is nothing to import into; the kubelet needs one to run pods (or set nodeRegistration.criSocket)", strings.Join(runmode.CRISockets, ", "))
	}
	return endpoint, err
}

// clusterImagesConfig is what names the worker's images: the cluster's imageRepository,
// kubernetesVersion and proxy.disabled, from its ClusterConfiguration in kube-system/kubeadm-config
// (which init lets the bootstrappers group read). A dry run without a cluster shows the defaults.
func (j *Join) clusterImagesConfig(ctx context.Context) (*config.Config, error) {
	cfg := &config.Config{}
	if j.discovered == nil {
		j.logf("[dryrun] Would read the cluster's image repository and Kubernetes version from ConfigMap kube-system/%s; showing the defaults instead", bootstrap.KubeadmConfigConfigMap)
		return cfg, nil
	}
	cm, err := j.systemConfigMap(ctx, bootstrap.KubeadmConfigConfigMap)
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap kube-system/%s with the bootstrap token, for the names of the images to import: %w (init uploads it in its upload-config phase; a node whose runtime pulls from a registry can skip this phase: --skip-phases images)", bootstrap.KubeadmConfigConfigMap, err)
	}
	if err := yaml.Unmarshal([]byte(cm.Data[bootstrap.ClusterConfigKey]), &cfg.Cluster); err != nil {
		return nil, fmt.Errorf("ConfigMap kube-system/%s, key %s: %w", bootstrap.KubeadmConfigConfigMap, bootstrap.ClusterConfigKey, err)
	}
	return cfg, nil
}
