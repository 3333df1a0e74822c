// Package clusterconfig owns how the commands that run after init (certs, kubeconfig user, token
// create) find the configuration the cluster was built with, and the file init saves it in. Like
// kubeadm they read the ClusterConfiguration from the kube-system/kubeadm-config ConfigMap when
// the API server answers; unlike kubeadm, init also saves its whole effective configuration under
// the root dir, which supplies this node's own settings (advertise address, bind port, node name,
// kubestrap's ports) and stands in for the ConfigMap when the API server is down. Built-in
// defaults with host detection are the last resort, and are said to be.
package clusterconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubestrap/kubestrap/internal/bootstrap"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// SavedFileMode keeps the saved configuration private, as kubeadm's own files under
// /etc/kubernetes are: it describes the node's network and security settings.
const SavedFileMode os.FileMode = 0o600

// DefaultTimeout bounds the ConfigMap read: a command that only needs the configuration must
// not hang on an API server that does not answer, since the saved file can stand in for it.
const DefaultTimeout = 10 * time.Second

// savedHeader opens the saved file, for whoever finds it on a node.
const savedHeader = `# The effective configuration "kubestrap init" ran with on this node: the configuration file
# and flags, with defaults and detected values filled in. "kubestrap certs", "kubestrap kubeconfig
# user" and "kubestrap token create" read the cluster-wide part from the kube-system/kubeadm-config
# ConfigMap when the API server answers and this node's part from here; when it does not answer
# they use this file alone. Bootstrap tokens and the certificate key are not saved. init rewrites
# this file when its configuration changes; "kubestrap reset" removes it.
`

// Source says where a configuration came from.
type Source string

const (
	// SourceFile is the --config file.
	SourceFile Source = "file"
	// SourceCluster is the kubeadm-config ConfigMap (with this node's part from the saved file,
	// or detected when there is none).
	SourceCluster Source = "cluster"
	// SourceSaved is the file init saved.
	SourceSaved Source = "saved"
	// SourceDefaults is the built-in defaults with this host's detected values.
	SourceDefaults Source = "defaults"
)

// Options say where Load looks.
type Options struct {
	// ConfigFile is --config; when set it is the only source, as before init saved anything.
	ConfigFile string
	// Overrides are flags that override the configuration (e.g. --cert-dir).
	Overrides config.Overrides
	// Host answers what dynamic defaulting detects (node name, advertise address).
	Host config.Host
	// Paths is the root the saved file and admin.conf are read from.
	Paths paths.Paths
	// Kubeconfig is the kubeconfig whose cluster holds the ConfigMap; "" means admin.conf under
	// the root.
	Kubeconfig string
	// NewClient builds the client from Kubeconfig; nil builds a real one. Tests inject fakes.
	NewClient func(kubeconfig string, timeout time.Duration) (kubeclient.Interface, error)
	// Timeout bounds reading the ConfigMap; 0 means DefaultTimeout.
	Timeout time.Duration
	// NoDefaults makes Load return a nil Config instead of falling back to the defaults, for a
	// caller that has a better fallback of its own.
	NoDefaults bool
	// Log receives one line saying which source was used; Prefix starts it ("[certs]").
	Log    io.Writer
	Prefix string
}

// Loaded is a configuration and where it came from.
type Loaded struct {
	Config *config.Config
	Source Source
	// NodeDetected is set when this node's part (InitConfiguration, KubestrapConfiguration) was
	// not saved by init and comes from the defaults and host detection instead.
	NodeDetected bool
}

// Load returns the configuration of the cluster under o.Paths: the --config file when given;
// else the ClusterConfiguration of the kubeadm-config ConfigMap with this node's part from the
// saved file; else the saved file; else the defaults with detected values. The ConfigMap is
// skipped, with a note, when admin.conf is missing or the API server does not answer in time; a
// ConfigMap or saved file that does not load is an error naming it, not a reason to guess.
func Load(ctx context.Context, o Options) (*Loaded, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, o.Prefix+" "+format+"\n", args...)
		}
	}
	if o.ConfigFile != "" {
		cfg, err := config.LoadInit(o.ConfigFile, o.Overrides, o.Host)
		if err != nil {
			return nil, err
		}
		logf("Using the configuration file %s", o.ConfigFile)
		return &Loaded{Config: cfg, Source: SourceFile}, nil
	}
	savedPath := o.Paths.SavedConfig()
	saved, err := os.ReadFile(savedPath)
	if errors.Is(err, fs.ErrNotExist) {
		saved = nil
	} else if err != nil {
		return nil, fmt.Errorf("reading the saved configuration: %w", err)
	}

	clusterDoc, why := fetchClusterConfiguration(ctx, o, logf)
	if clusterDoc != nil {
		node, err := nodeDocuments(savedPath, saved)
		if err != nil {
			return nil, err
		}
		source := "ConfigMap kube-system/" + bootstrap.KubeadmConfigConfigMap
		if node != nil {
			source += " and " + savedPath
		}
		cfg, err := config.LoadInitData(source, joinDocuments(clusterDoc, node), o.Overrides, o.Host)
		if err != nil {
			return nil, err
		}
		if node == nil {
			logf("WARNING: %s not found: this node's settings (advertise address, bind port, node name) are the defaults and detected values", savedPath)
		}
		return &Loaded{Config: cfg, Source: SourceCluster, NodeDetected: node == nil}, nil
	}
	if saved != nil {
		cfg, err := config.LoadInitData(savedPath, saved, o.Overrides, o.Host)
		if err != nil {
			return nil, fmt.Errorf("%w (pass --config to use another configuration)", err)
		}
		logf("Using the configuration saved by init in %s (%s)", savedPath, why)
		return &Loaded{Config: cfg, Source: SourceSaved}, nil
	}
	if o.NoDefaults {
		return &Loaded{Source: SourceDefaults}, nil
	}
	cfg, err := config.LoadInit("", o.Overrides, o.Host)
	if err != nil {
		return nil, err
	}
	logf("WARNING: no configuration of this cluster found (%s; no %s): using the defaults and this host's detected values. Pass --config if the cluster was set up with a configuration file", why, savedPath)
	return &Loaded{Config: cfg, Source: SourceDefaults, NodeDetected: true}, nil
}

// fetchClusterConfiguration returns the ClusterConfiguration document of the kubeadm-config
// ConfigMap, or nil and the reason it could not be read.
func fetchClusterConfiguration(ctx context.Context, o Options, logf func(string, ...any)) ([]byte, string) {
	kc := o.Kubeconfig
	if kc == "" {
		kc = o.Paths.Kubeconfig("admin.conf")
		if _, err := os.Stat(kc); err != nil {
			return nil, fmt.Sprintf("%s not found, so the cluster could not be asked", kc)
		}
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	newClient := o.NewClient
	if newClient == nil {
		newClient = clientFor
	}
	c, err := newClient(kc, timeout)
	if err != nil {
		return nil, fmt.Sprintf("no client from %s: %v", kc, err)
	}
	logf("Reading configuration from the cluster...")
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cm, err := c.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, bootstrap.KubeadmConfigConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, "the cluster has no ConfigMap kube-system/" + bootstrap.KubeadmConfigConfigMap
	case err != nil:
		return nil, fmt.Sprintf("the cluster did not answer: %v", err)
	}
	doc, ok := cm.Data[bootstrap.ClusterConfigKey]
	if !ok {
		return nil, fmt.Sprintf("ConfigMap kube-system/%s has no %s key", bootstrap.KubeadmConfigConfigMap, bootstrap.ClusterConfigKey)
	}
	return []byte(doc), ""
}

// clientFor builds a client from a kubeconfig file, with a request timeout.
func clientFor(kubeconfig string, timeout time.Duration) (kubeclient.Interface, error) {
	return kubeclient.FromKubeconfigFile(kubeconfig, kubeclient.Options{Timeout: timeout})
}

// nodeDocuments returns the saved file's InitConfiguration and KubestrapConfiguration, the node's
// own part; nil when nothing was saved.
func nodeDocuments(path string, saved []byte) ([]byte, error) {
	if saved == nil {
		return nil, nil
	}
	docs, err := config.ParseDocuments(saved)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (pass --config to use another configuration)", path, err)
	}
	var parts [][]byte
	for _, kind := range []struct{ apiVersion, kind string }{
		{config.KubeadmAPIVersion, config.KindInit},
		{config.KubestrapAPIVersion, config.KindKubestrap},
	} {
		if d, ok := docs.Find(kind.apiVersion, kind.kind); ok {
			parts = append(parts, d.Raw)
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s holds neither an %s nor a %s document (pass --config to use another configuration)", path, config.KindInit, config.KindKubestrap)
	}
	return joinDocuments(parts...), nil
}

func joinDocuments(docs ...[]byte) []byte {
	var b bytes.Buffer
	for _, d := range docs {
		if len(d) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("---\n")
		}
		b.Write(d)
		if !bytes.HasSuffix(d, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Render is the saved file's content for cfg. Bootstrap tokens and the certificate key are
// credentials that live in the cluster (tokens as Secrets, with their own expiry); a node file
// that outlives them has no use for them.
func Render(cfg *config.Config) ([]byte, error) {
	c := *cfg
	c.Init.BootstrapTokens = nil
	c.Init.CertificateKey = ""
	c.Init.DryRun = false
	data, err := config.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte(savedHeader), data...), nil
}

// Save writes cfg to the saved file under p through w, 0600, unless the file already holds
// exactly that; it reports whether it wrote. A dry-run writer only says what it would write.
func Save(w fsutil.Writer, cfg *config.Config, p paths.Paths, log io.Writer) (bool, error) {
	data, err := Render(cfg)
	if err != nil {
		return false, err
	}
	path := p.SavedConfig()
	existing, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(existing, data):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("reading the saved configuration: %w", err)
	}
	// The directory also holds the encryption-at-rest key; it is private whoever creates it first.
	if err := w.Mkdir(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	if err := w.WriteFile(path, data, SavedFileMode, fsutil.Describe("the effective configuration, for later commands")); err != nil {
		return false, err
	}
	if w.DryRun() {
		return false, nil
	}
	fmt.Fprintf(log, "[init] Saved the effective configuration to %s\n", path)
	return true, nil
}
