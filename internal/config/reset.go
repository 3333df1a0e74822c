package config

import (
	"fmt"
	"os"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubestrap/kubestrap/internal/paths"
)

// Unmount flags ResetConfiguration.unmountFlags accepts (umount2(2) flag names, as in kubeadm).
var unmountFlags = []string{"MNT_FORCE", "MNT_DETACH", "MNT_EXPIRE", "UMOUNT_NOFOLLOW"}

// LoadReset reads reset's configuration from a file (none when path is ""), strictly decoded,
// defaulted and validated.
func LoadReset(path string) (*ResetConfiguration, error) {
	if path == "" {
		return loadReset("", nil, false)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w", err)
	}
	return loadReset(path, data, true)
}

func loadReset(source string, data []byte, haveFile bool) (*ResetConfiguration, error) {
	return loadResetChecked(source, data, haveFile, nil)
}

// loadResetChecked is loadReset that also checks skipPhases against phases (see PhaseNames).
func loadResetChecked(source string, data []byte, haveFile bool, phases []string) (*ResetConfiguration, error) {
	var docs Documents
	var problems []error
	if haveFile {
		var err error
		docs, err = ParseDocuments(data)
		problems = problemsOf(err)
	}
	return resetFromDocuments(source, docs, problems, haveFile, phases)
}

// LoadResetFile reads and parses path once and loads what reset uses from it: the
// ResetConfiguration, and the init configuration (InitConfiguration or ClusterConfiguration) whose
// certificatesDir and etcd dataDir reset also cleans. Either is nil when the file has no such
// document; a file with neither yields two nils.
func LoadResetFile(path string, host Host) (*ResetConfiguration, *Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the config file: %w", err)
	}
	docs, err := ParseDocuments(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var rc *ResetConfiguration
	var cluster *Config
	if docs.Has(KindReset) {
		if rc, err = resetFromDocuments(path, docs, nil, true, nil); err != nil {
			return nil, nil, err
		}
	}
	if docs.Has(KindInit) || docs.Has(KindCluster) {
		if cluster, err = initFromDocuments(path, docs, nil, true, Overrides{}, host, nil); err != nil {
			return nil, nil, err
		}
	}
	return rc, cluster, nil
}

// resetFromDocuments is loadResetChecked after the file's documents are parsed.
func resetFromDocuments(source string, docs Documents, problems []error, haveFile bool, phases []string) (*ResetConfiguration, error) {
	r := &ResetConfiguration{}
	if haveFile {
		d, ok := docs.Find(KubeadmAPIVersion, KindReset)
		if !ok {
			if len(problems) == 0 {
				problems = []error{fmt.Errorf("no %s document found", KindReset)}
			}
			return nil, newError(source, problems)
		}
		strict, err := decodeStrict(d, r)
		if err != nil {
			return nil, newError(source, append(problems, err))
		}
		problems = append(problems, strict...)
	}
	SetResetDefaults(r)
	problems = append(problems, toErrors(validateReset(r))...)
	problems = append(problems, toErrors(validateSkipPhases(r.SkipPhases, phases))...)
	if len(problems) > 0 {
		return nil, newError(source, problems)
	}
	return r, nil
}

// SetResetDefaults fills in kubeadm's static defaults of a ResetConfiguration.
func SetResetDefaults(r *ResetConfiguration) {
	if r.CertificatesDir == "" {
		r.CertificatesDir = paths.DefaultCertificatesDir
	}
	r.CRISocket = socketURL(r.CRISocket)
	r.Timeouts = defaultTimeouts(r.Timeouts)
}

// DefaultReset is what `config print reset-defaults` prints.
func DefaultReset() *ResetConfiguration {
	r := &ResetConfiguration{}
	SetResetDefaults(r)
	return r
}

// ValidateReset checks a defaulted ResetConfiguration and returns an *Error listing every problem.
func ValidateReset(r *ResetConfiguration) error {
	return newError("", toErrors(validateReset(r)))
}

func validateReset(r *ResetConfiguration) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateAbsPath(r.CertificatesDir, field.NewPath("certificatesDir"))...)
	errs = append(errs, validateCRISocket(r.CRISocket, field.NewPath("criSocket"))...)
	for i, f := range r.UnmountFlags {
		if !slices.Contains(unmountFlags, f) {
			errs = append(errs, field.NotSupported(field.NewPath("unmountFlags").Index(i), f, unmountFlags))
		}
	}
	errs = append(errs, validateTimeouts(r.Timeouts, field.NewPath("timeouts"))...)
	return errs
}
