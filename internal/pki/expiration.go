package pki

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// CertInfo is one row of `certs check-expiration`.
type CertInfo struct {
	// Name is the phase name of a certificate ("apiserver"), or the kubeconfig file name
	// ("admin.conf") for an embedded client certificate.
	Name string
	// Path is the file holding it.
	Path           string
	ExpirationDate time.Time
	// ResidualTime is ExpirationDate minus now; negative once expired.
	ResidualTime time.Duration
	// CAName is the signing CA's name; empty for a CA.
	CAName string
	// ExternallyManaged is true when the signing CA's key (or, for a CA, its own key) is absent:
	// kubestrap cannot renew such a certificate.
	ExternallyManaged bool
	// Missing is true when the file does not exist.
	Missing bool
}

// CheckExpiration reports the expiry of every leaf certificate and kubeconfig client certificate
// (sorted by name) and, separately, of every CA, as of now.
func CheckExpiration(cfg *config.Config, p paths.Paths) ([]CertInfo, []CertInfo, error) {
	return CheckExpirationAt(cfg, p, time.Now())
}

// CheckExpirationAt is CheckExpiration with an explicit clock.
func CheckExpirationAt(cfg *config.Config, p paths.Paths, now time.Time) ([]CertInfo, []CertInfo, error) {
	dir := p.CertDir(cfg.Cluster.CertificatesDir)
	// Only names and files matter here, so the configuration-independent list is enough: a
	// report must not fail because, say, the advertise address can no longer be detected.
	var specs []CertSpec
	for _, s := range static {
		if !s.Etcd || cfg.LocalEtcd() {
			specs = append(specs, s)
		}
	}
	// A CA is externally managed when its certificate is there but its key is not.
	external := map[string]bool{}
	var certs, cas []CertInfo
	var errs []error
	for _, s := range specs {
		if !s.IsCA() {
			continue
		}
		info := CertInfo{Name: s.Name, Path: filepath.Join(dir, s.CertFile())}
		if err := fillFromFile(&info, now); err != nil {
			errs = append(errs, err)
			continue
		}
		if !info.Missing {
			keyOK, err := fileExists(filepath.Join(dir, s.KeyFile()))
			if err != nil {
				errs = append(errs, err)
			}
			external[s.Name] = !keyOK
			info.ExternallyManaged = !keyOK
		}
		cas = append(cas, info)
	}
	for _, s := range specs {
		if s.IsCA() {
			continue
		}
		info := CertInfo{Name: s.Name, Path: filepath.Join(dir, s.CertFile()), CAName: s.CAName, ExternallyManaged: external[s.CAName]}
		if err := fillFromFile(&info, now); err != nil {
			errs = append(errs, err)
			continue
		}
		// The expiry of a certificate whose key is another one's (an interrupted renewal) is
		// not the expiry of anything a component can use: refuse rather than report it.
		if !info.Missing {
			if err := checkLeafKeyFile(info.Path, filepath.Join(dir, s.KeyFile()), s.Name); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		certs = append(certs, info)
	}
	for _, k := range renewableKubeconfigs {
		info := CertInfo{Name: k.file, Path: p.Kubeconfig(k.file), CAName: CA, ExternallyManaged: external[CA]}
		ec, err := readEmbeddedClient(info.Path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			info.Missing = true
		case err != nil:
			errs = append(errs, err)
			continue
		default:
			info.ExpirationDate = ec.cert.NotAfter
			info.ResidualTime = ec.cert.NotAfter.Sub(now)
		}
		certs = append(certs, info)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	byName := func(s []CertInfo) { sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name }) }
	byName(certs)
	byName(cas)
	return certs, cas, nil
}

func fillFromFile(info *CertInfo, now time.Time) error {
	cert, err := ReadCert(info.Path)
	if errors.Is(err, os.ErrNotExist) {
		info.Missing = true
		return nil
	}
	if err != nil {
		return err
	}
	info.ExpirationDate = cert.NotAfter
	info.ResidualTime = cert.NotAfter.Sub(now)
	return nil
}

// OutputAPIVersion and the types below reproduce kubeadm's check-expiration output object
// (output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo) so that scripts parsing kubeadm's
// -o json/yaml work unchanged.
const OutputAPIVersion = "output.kubeadm.k8s.io/v1alpha3"

// ExpirationCertificate is one entry of CertificateExpirationInfo.
type ExpirationCertificate struct {
	Name           string      `json:"name"`
	ExpirationDate metav1.Time `json:"expirationDate"`
	// ResidualTime is in seconds, as in kubeadm's object.
	ResidualTime      int64  `json:"residualTime"`
	ExternallyManaged bool   `json:"externallyManaged"`
	CAName            string `json:"caName,omitempty"`
	Missing           bool   `json:"missing"`
}

// CertificateExpirationInfo is the -o json|yaml form of check-expiration.
type CertificateExpirationInfo struct {
	metav1.TypeMeta        `json:",inline"`
	Certificates           []ExpirationCertificate `json:"certificates"`
	CertificateAuthorities []ExpirationCertificate `json:"certificateAuthorities"`
}

// ExpirationInfo builds the output object from CheckExpiration's result.
func ExpirationInfo(certs, cas []CertInfo) *CertificateExpirationInfo {
	conv := func(in []CertInfo) []ExpirationCertificate {
		out := make([]ExpirationCertificate, 0, len(in))
		for _, c := range in {
			e := ExpirationCertificate{Name: c.Name, Missing: c.Missing}
			if !c.Missing {
				e.ExpirationDate = metav1.NewTime(c.ExpirationDate.UTC())
				e.ResidualTime = int64(c.ResidualTime / time.Second)
				e.ExternallyManaged = c.ExternallyManaged
				e.CAName = c.CAName
			}
			out = append(out, e)
		}
		return out
	}
	return &CertificateExpirationInfo{
		TypeMeta:               metav1.TypeMeta{APIVersion: OutputAPIVersion, Kind: "CertificateExpirationInfo"},
		Certificates:           conv(certs),
		CertificateAuthorities: conv(cas),
	}
}

// WriteExpirationTable prints kubeadm's check-expiration table: certificates, a blank line, then
// the CAs. Missing files show as "!MISSING! <name>".
func WriteExpirationTable(w io.Writer, certs, cas []CertInfo) error {
	tw := tabwriter.NewWriter(w, 10, 4, 3, ' ', 0)
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	expires := func(c CertInfo) string { return c.ExpirationDate.UTC().Format("Jan 02, 2006 15:04 MST") }
	residual := func(c CertInfo) string { return duration.HumanDuration(c.ResidualTime.Truncate(time.Second)) }

	fmt.Fprintln(tw, "CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED")
	for _, c := range certs {
		if c.Missing {
			fmt.Fprintf(tw, "!MISSING! %s\t\t\t\t\n", c.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, expires(c), residual(c), c.CAName, yesNo(c.ExternallyManaged))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CERTIFICATE AUTHORITY\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED")
	for _, c := range cas {
		if c.Missing {
			fmt.Fprintf(tw, "!MISSING! %s\t\t\t\n", c.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, expires(c), residual(c), yesNo(c.ExternallyManaged))
	}
	return tw.Flush()
}

func checkLeafKeyFile(certPath, keyPath, renewName string) error {
	cert, err := ReadCert(certPath)
	if err != nil {
		return err
	}
	return checkLeafKey(certPath, keyPath, cert, renewName)
}
