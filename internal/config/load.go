package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// Overrides are the values init's command-line flags set. They win over the config file; the zero
// value of each field means "flag not given".
type Overrides struct {
	AdvertiseAddress     string
	BindPort             int32
	CertExtraSANs        []string
	ControlPlaneEndpoint string
	NodeName             string
	ServiceCIDR          string
	PodCIDR              string
	DNSDomain            string
	CertDir              string
	KubernetesVersion    string
	EncryptionAlgorithm  string
	Mode                 string
}

// Apply writes the set overrides into c. --apiserver-cert-extra-sans replaces apiServer.certSANs
// rather than adding to it, as every other flag replaces its field.
func (o Overrides) Apply(c *Config) {
	setString := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setString(&c.Init.LocalAPIEndpoint.AdvertiseAddress, o.AdvertiseAddress)
	if o.BindPort != 0 {
		c.Init.LocalAPIEndpoint.BindPort = o.BindPort
	}
	if len(o.CertExtraSANs) > 0 {
		c.Cluster.APIServer.CertSANs = append([]string(nil), o.CertExtraSANs...)
	}
	setString(&c.Cluster.ControlPlaneEndpoint, o.ControlPlaneEndpoint)
	setString(&c.Init.NodeRegistration.Name, o.NodeName)
	setString(&c.Cluster.Networking.ServiceSubnet, o.ServiceCIDR)
	setString(&c.Cluster.Networking.PodSubnet, o.PodCIDR)
	setString(&c.Cluster.Networking.DNSDomain, o.DNSDomain)
	setString(&c.Cluster.CertificatesDir, o.CertDir)
	setString(&c.Cluster.KubernetesVersion, o.KubernetesVersion)
	setString(&c.Cluster.EncryptionAlgorithm, o.EncryptionAlgorithm)
	setString(&c.Kubestrap.Mode, o.Mode)
}

// LoadInit builds init's configuration: it reads path (none when ""), decodes its documents
// strictly, applies the flag overrides, the static and then the dynamic defaults (asking host for
// what it cannot know), and validates the result. The error lists every problem found. It writes
// nothing and does not generate a bootstrap token; init calls EnsureBootstrapToken for that.
func LoadInit(path string, o Overrides, host Host) (*Config, error) {
	if path == "" {
		return loadInit("", nil, false, o, host)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w", err)
	}
	return loadInit(path, data, true, o, host)
}

// LoadInitData is LoadInit for a configuration already in memory (a ConfigMap, stdin, a test);
// source names it in messages.
func LoadInitData(source string, data []byte, o Overrides, host Host) (*Config, error) {
	return loadInit(source, data, true, o, host)
}

func loadInit(source string, data []byte, haveFile bool, o Overrides, host Host) (*Config, error) {
	return loadInitChecked(source, data, haveFile, o, host, nil)
}

// loadInitChecked is loadInit that also checks skipPhases against phases, the names init's
// workflow accepts (not checked when nil: the command checks them itself, in its runner).
func loadInitChecked(source string, data []byte, haveFile bool, o Overrides, host Host, phases []string) (*Config, error) {
	var docs Documents
	var problems []error
	if haveFile {
		var err error
		docs, err = ParseDocuments(data)
		problems = problemsOf(err)
	}
	return initFromDocuments(source, docs, problems, haveFile, o, host, phases)
}

// initFromDocuments is loadInitChecked after the file's documents are parsed; problems are the
// parse problems so far, reported together with the rest.
func initFromDocuments(source string, docs Documents, problems []error, haveFile bool, o Overrides, host Host, phases []string) (*Config, error) {
	c := &Config{}
	if haveFile {
		if !docs.Has(KindInit) && !docs.Has(KindCluster) && !docs.Has(KindKubestrap) {
			if len(problems) == 0 {
				problems = []error{fmt.Errorf("no %s, %s or %s document found", KindInit, KindCluster, KindKubestrap)}
			}
			return nil, newError(source, problems)
		}
		decodeProblems, hard := decodeInitDocuments(docs, c)
		problems = append(problems, decodeProblems...)
		if hard {
			return nil, newError(source, problems)
		}
	}
	o.Apply(c)
	SetDefaults(c)
	dyn := ApplyDynamicDefaults(c, host)
	problems = append(problems, mergeFieldErrors(dyn, validateConfig(c))...)
	problems = append(problems, toErrors(validateSkipPhases(c.Init.SkipPhases, phases))...)
	if len(problems) > 0 {
		return nil, newError(source, problems)
	}
	return c, nil
}

// PhaseNames are, per command, the phase names skipPhases may hold. The command layer fills them
// from the commands' workflow runners, which check --skip-phases and skipPhases against the same
// lists when the commands run.
type PhaseNames struct {
	Init, Join, Reset []string
}

// validateSkipPhases checks skip against valid; a nil valid list means "not checked here".
func validateSkipPhases(skip, valid []string) field.ErrorList {
	if valid == nil {
		return nil
	}
	var errs field.ErrorList
	for i, s := range skip {
		if !slices.Contains(valid, s) {
			errs = append(errs, field.NotSupported(field.NewPath("skipPhases").Index(i), s, valid))
		}
	}
	return errs
}

// decodeInitDocuments decodes the documents init reads into c. Join, reset and upgrade documents
// are checked too, because kubeadm lets one file serve several commands and a typo there is still a
// typo. The component configs are decoded strictly into their types, and kept as the JSON the
// file holds. hard reports that some document could not be decoded at all, after which
// validating c would only produce noise.
func decodeInitDocuments(docs Documents, c *Config) (problems []error, hard bool) {
	for _, d := range docs {
		var target any
		var keep *json.RawMessage
		switch {
		case d.APIVersion == KubeletConfigAPIVersion && d.Kind == KindKubeletConfig:
			target, keep = &kubeletv1beta1.KubeletConfiguration{}, &c.KubeletConfiguration
		case d.APIVersion == KubeProxyConfigAPIVer && d.Kind == KindKubeProxyConfig:
			target, keep = &kubeproxyv1alpha1.KubeProxyConfiguration{}, &c.KubeProxyConfiguration
		case d.APIVersion == KubeadmAPIVersion && d.Kind == KindInit:
			target = &c.Init
		case d.APIVersion == KubeadmAPIVersion && d.Kind == KindCluster:
			target = &c.Cluster
		case d.APIVersion == KubestrapAPIVersion && d.Kind == KindKubestrap:
			target = &c.Kubestrap
		case d.APIVersion == KubeadmAPIVersion && d.Kind == KindJoin:
			target = &JoinConfiguration{}
		case d.APIVersion == KubeadmAPIVersion && d.Kind == KindReset:
			target = &ResetConfiguration{}
		default:
			continue
		}
		strict, err := decodeStrict(d, target)
		if err != nil {
			problems = append(problems, err)
			hard = true
			continue
		}
		problems = append(problems, strict...)
		if keep != nil {
			// decodeStrict has just converted the same text without error.
			js, _ := yaml.YAMLToJSONStrict(d.Raw)
			*keep = js
		}
	}
	return problems, hard
}

// mergeFieldErrors puts the dynamic-defaulting errors first and drops validation errors about the
// same fields: "could not detect the hostname" already says what a following "name: Required"
// would.
func mergeFieldErrors(dyn, val field.ErrorList) []error {
	seen := map[string]bool{}
	var out []error
	for _, e := range dyn {
		seen[e.Field] = true
		out = append(out, e)
	}
	for _, e := range val {
		if !seen[e.Field] {
			out = append(out, e)
		}
	}
	return out
}

// withSource re-labels an *Error (from ParseDocuments or Validate) with the file it came from.
func withSource(source string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Source: source, Problems: e.Problems}
	}
	if source == "" {
		return err
	}
	return fmt.Errorf("%s: %w", source, err)
}

// ValidateFile checks a configuration file the way the commands that read it would: the init
// documents as LoadInit does, a JoinConfiguration as LoadJoin does, a ResetConfiguration as
// LoadReset does, plus each document's skipPhases against phases. It returns the kinds found,
// and an *Error listing every problem otherwise.
func ValidateFile(path string, host Host, phases PhaseNames) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w", err)
	}
	// Problems of unidentifiable documents are reported again by the loaders below, and
	// deduplicated there; only a file with no usable document at all stops here.
	docs, err := ParseDocuments(data)
	asJoin := docs.Has(KindJoin)
	asReset := docs.Has(KindReset)
	// A KubestrapConfiguration next to a JoinConfiguration configures the join; on its own, or
	// next to init's documents, it configures init.
	asInit := docs.Has(KindInit) || docs.Has(KindCluster) || (docs.Has(KindKubestrap) && !asJoin)
	if !asInit && !asJoin && !asReset {
		if err != nil {
			return nil, withSource(path, err)
		}
		return nil, newError(path, []error{fmt.Errorf("no %s, %s, %s, %s or %s document found",
			KindInit, KindCluster, KindJoin, KindReset, KindKubestrap)})
	}
	var problems []error
	seen := map[string]bool{}
	collect := func(err error) {
		var e *Error
		if err == nil {
			return
		}
		if !errors.As(err, &e) {
			problems = append(problems, err)
			return
		}
		// Documents decoded by more than one loader (a KubestrapConfiguration used by init and
		// join) would otherwise report the same problem twice.
		for _, p := range e.Problems {
			if !seen[p.Error()] {
				seen[p.Error()] = true
				problems = append(problems, p)
			}
		}
	}
	if asInit {
		_, err := loadInitChecked(path, data, true, Overrides{}, host, phases.Init)
		collect(err)
	}
	if asJoin {
		_, err := loadJoinChecked(path, data, true, JoinOverrides{}, host, phases.Join)
		collect(err)
	}
	if asReset {
		_, err := loadResetChecked(path, data, true, phases.Reset)
		collect(err)
	}
	if len(problems) > 0 {
		return nil, newError(path, problems)
	}
	return docs.Kinds(), nil
}
