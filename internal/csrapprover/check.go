// Package csrapprover owns kubestrap's approver of kubelet serving certificates: the checks a
// kubernetes.io/kubelet-serving CertificateSigningRequest must pass (Check), the record of the
// addresses each node had when it joined (frozen from the annotation join puts on the node's
// Lease), the controller that approves what passes and leaves everything else pending with an
// Event that names the failed check (Controller, run as `kubestrap csr-approver` by every run
// mode), and the RBAC objects of its least-privilege identity (EnsureObjects). The
// controller-manager's csrsigning controller signs what it approves. It uses client-go only, so it
// runs without the bundled control plane's weight.
package csrapprover

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
)

// Names shared with init, join, reset and the run modes.
const (
	// Program is the approver's component name: its process, unit, static Pod and log are
	// called this, like the control-plane components.
	Program = components.CSRApproverName
	// User is the approver's identity, the CN of the client certificate in csr-approver.conf.
	User = kubeconfig.CSRApproverUser
	// JoinAddressesAnnotation, on the node's Lease in kube-node-lease, holds the addresses the
	// node had when it joined, comma-separated; join sets it with the node's own credentials.
	JoinAddressesAnnotation = "kubestrap.io/join-addresses"
	// RecordName is the ConfigMap in kube-system where the approver freezes the first
	// join-addresses value it sees for each node (key: node name). Only the approver and
	// cluster admins can write it.
	RecordName = "kubestrap-node-addresses"

	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

// Check names, as Events and errors spell them.
const (
	CheckSigner    = "signer"
	CheckRequester = "requester"
	CheckRequest   = "request"
	CheckSubject   = "subject"
	CheckUsages    = "usages"
	CheckSANs      = "subject-alternative-names"
	CheckDNSNames  = "dns-names"
	CheckIPs       = "ip-addresses"
)

// Rejection is why a CSR is not approved: the check that failed and what exactly was wrong.
type Rejection struct {
	Check  string
	Detail string
}

func (r *Rejection) Error() string { return r.Check + " check failed: " + r.Detail }

func reject(check, format string, args ...any) *Rejection {
	return &Rejection{Check: check, Detail: fmt.Sprintf(format, args...)}
}

// Check decides whether csr is a kubelet serving CSR kubestrap can vouch for, and returns nil or
// the first failed check. All of these must hold:
//   - the signer is kubernetes.io/kubelet-serving;
//   - the requester is system:node:<name> in group system:nodes (a node asks for itself);
//   - the request parses and its signature verifies (the requester holds the key);
//   - the subject is exactly CN=<the requester's username>, O=system:nodes;
//   - the usages are exactly what a kubelet sends for its key type: digital signature and server
//     auth, plus key encipherment for RSA keys (client-go's DefaultKubeletServingGetUsages);
//   - no URI or email SANs, and at least one DNS or IP SAN;
//   - every DNS SAN is the node's name;
//   - every IP SAN is one of the addresses frozen for the node when it joined (joinAddresses,
//     keyed by node name).
func Check(csr *certificatesv1.CertificateSigningRequest, joinAddresses map[string][]netip.Addr) error {
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
		return reject(CheckSigner, "signer is %q, not %q", csr.Spec.SignerName, certificatesv1.KubeletServingSignerName)
	}
	node, ok := strings.CutPrefix(csr.Spec.Username, nodeUserPrefix)
	if !ok || node == "" {
		return reject(CheckRequester, "requested by %q, not by a node (system:node:<name>)", csr.Spec.Username)
	}
	if !slices.Contains(csr.Spec.Groups, nodesGroup) {
		return reject(CheckRequester, "requester %q is not in group %s (groups %q)", csr.Spec.Username, nodesGroup, csr.Spec.Groups)
	}
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return reject(CheckRequest, "%v", err)
	}
	if req.Subject.CommonName != csr.Spec.Username {
		return reject(CheckSubject, "common name %q is not the requester %q", req.Subject.CommonName, csr.Spec.Username)
	}
	if !slices.Equal(req.Subject.Organization, []string{nodesGroup}) {
		return reject(CheckSubject, "organization is %q, want exactly [%q]", req.Subject.Organization, nodesGroup)
	}
	if err := checkUsages(req, csr.Spec.Usages); err != nil {
		return err
	}
	if len(req.URIs) > 0 || len(req.EmailAddresses) > 0 {
		return reject(CheckSANs, "URI or email subject alternative names are not allowed (URIs %q, emails %q)", req.URIs, req.EmailAddresses)
	}
	if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
		return reject(CheckSANs, "the request names no DNS name or IP address")
	}
	for _, dns := range req.DNSNames {
		if dns != node {
			return reject(CheckDNSNames, "DNS name %q is not the node's name %q", dns, node)
		}
	}
	if len(req.IPAddresses) == 0 {
		return nil
	}
	known, ok := joinAddresses[node]
	if !ok {
		return reject(CheckIPs, "no join addresses are recorded for node %q (kube-system/%s has no entry; join records them on the node's Lease as %s)", node, RecordName, JoinAddressesAnnotation)
	}
	for _, ip := range req.IPAddresses {
		a, ok := netip.AddrFromSlice(ip)
		if !ok || !slices.Contains(known, a.Unmap()) {
			return reject(CheckIPs, "IP address %s is not an address node %q had when it joined (%s)", ip, node, FormatAddresses(known))
		}
	}
	return nil
}

func parseRequest(b []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("spec.request is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("spec.request does not parse: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the request's signature does not verify: %w", err)
	}
	return req, nil
}

// checkUsages holds the usages to exactly what a kubelet asks for with its key type.
func checkUsages(req *x509.CertificateRequest, got []certificatesv1.KeyUsage) error {
	want := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	var alg string
	switch req.PublicKey.(type) {
	case *rsa.PublicKey:
		// Key encipherment is an RSA key-exchange usage; only RSA keys may ask for it.
		want = append(want, certificatesv1.UsageKeyEncipherment)
		alg = "RSA"
	case *ecdsa.PublicKey:
		alg = "ECDSA"
	case ed25519.PublicKey:
		alg = "Ed25519"
	default:
		return reject(CheckUsages, "unsupported public key type %T", req.PublicKey)
	}
	if !sameSet(got, want) {
		return reject(CheckUsages, "usages %q are not exactly %q (what a kubelet asks for with an %s key)", got, want, alg)
	}
	return nil
}

func sameSet(a, b []certificatesv1.KeyUsage) bool {
	for _, u := range a {
		if !slices.Contains(b, u) {
			return false
		}
	}
	for _, u := range b {
		if !slices.Contains(a, u) {
			return false
		}
	}
	return true
}

// ParseAddresses parses a join-addresses value: IP addresses separated by commas. It fails on an
// empty value or anything that is not an address, so that nothing half-understood is frozen.
func ParseAddresses(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", f)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("%q has a zone; a certificate cannot name one", f)
		}
		a = a.Unmap()
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no addresses")
	}
	return out, nil
}

// FormatAddresses is the join-addresses spelling of addrs.
func FormatAddresses(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// ErrNoAddress: the node's address could not be found (NodeAddresses' fallback failed).
var ErrNoAddress = errors.New("cannot tell the node's address")

// NodeIPArg is the kubelet's --node-ip from kubeletExtraArgs (comma-separated for dual stack; the
// last one wins, as on a command line): nil when it is unset or names the unspecified address,
// which the kubelet treats as "pick one".
func NodeIPArg(kubeletExtraArgs []config.Arg) ([]netip.Addr, error) {
	var nodeIP string
	for _, a := range kubeletExtraArgs {
		if a.Name == "node-ip" {
			nodeIP = a.Value
		}
	}
	if nodeIP == "" {
		return nil, nil
	}
	addrs, err := ParseAddresses(nodeIP)
	if err != nil {
		return nil, fmt.Errorf("kubeletExtraArgs node-ip=%q: %w", nodeIP, err)
	}
	if slices.ContainsFunc(addrs, netip.Addr.IsUnspecified) {
		return nil, nil
	}
	return addrs, nil
}

// NodeAddresses are the addresses a node's kubelet reports as its own, as far as kubestrap can
// tell when the node is set up: the kubelet's --node-ip (NodeIPArg) when it names addresses,
// otherwise what fallback returns — the address a kubelet picks by default (the default
// route's interface) on a worker, the advertise address on a control-plane node. A failing
// fallback is ErrNoAddress.
func NodeAddresses(kubeletExtraArgs []config.Arg, fallback func() (string, error)) ([]netip.Addr, error) {
	addrs, err := NodeIPArg(kubeletExtraArgs)
	if err != nil || addrs != nil {
		return addrs, err
	}
	s, err := fallback()
	if err != nil {
		return nil, fmt.Errorf("%w (set kubeletExtraArgs node-ip to name it): %v", ErrNoAddress, err)
	}
	addrs, err = ParseAddresses(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoAddress, err)
	}
	return addrs, nil
}
