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
	r := &ResetConfiguration{}
	var problems []error
	if haveFile {
		docs, err := ParseDocuments(data)
		problems = problemsOf(err)
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
