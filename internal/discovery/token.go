package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/pki"
)

// DefaultUnknownTokenAfter is how long the API server must keep rejecting a token that
// cluster-info has no signature for before discovery stops waiting for one. A token created a
// moment ago is accepted at once (the apiserver reads token Secrets from its watch cache) even
// though the controller-manager signs cluster-info for it a little later, so a few seconds of
// rejection mean the token really is unknown, expired or deleted.
const DefaultUnknownTokenAfter = 3 * time.Second

// TokenOptions configure token discovery.
type TokenOptions struct {
	// Endpoint is the control plane's host:port, the argument of join.
	Endpoint string
	// Token is the discovery token "<id>.<secret>".
	Token string
	// CACertHashes pin the cluster CA ("sha256:<hex>"); any one matching is enough.
	CACertHashes []string
	// UnsafeSkipCAVerification allows discovery without a pin: the JWS signature then only proves
	// that whoever answers knows the token.
	UnsafeSkipCAVerification bool
	// Timeout bounds the whole discovery (timeouts.discovery).
	Timeout time.Duration
	// Interval is the pause between attempts; 0 means DefaultInterval, and more than MaxInterval
	// is capped.
	Interval time.Duration
	// UnknownTokenAfter: see DefaultUnknownTokenAfter; 0 means that default.
	UnknownTokenAfter time.Duration
	// Log receives "[discovery] ..." progress lines; nil discards them.
	Log io.Writer
}

// Validate checks everything that needs no network: the endpoint, the token and the hashes. A
// malformed value fails here, immediately, rather than after minutes of retrying.
func (o TokenOptions) Validate() error {
	var errs []error
	if o.Endpoint == "" {
		errs = append(errs, errors.New("no API server endpoint: pass the control plane's host:port as the argument of join"))
	} else if host, port, err := net.SplitHostPort(o.Endpoint); err != nil || host == "" || port == "" {
		errs = append(errs, fmt.Errorf("API server endpoint %q must be host:port, such as 192.168.0.10:6443", o.Endpoint))
	}
	if !bootstraputil.IsValidBootstrapToken(o.Token) {
		errs = append(errs, fmt.Errorf("the discovery token %s is malformed: it must have the form [a-z0-9]{6}.[a-z0-9]{16} (generate one with 'kubestrap token create' on a control-plane node)", config.RedactToken(o.Token)))
	}
	for _, h := range o.CACertHashes {
		if err := ValidateHash(h); err != nil {
			errs = append(errs, err)
		}
	}
	if len(o.CACertHashes) == 0 && !o.UnsafeSkipCAVerification {
		errs = append(errs, errors.New("token discovery without a CA certificate hash trusts whoever answers: pass --discovery-token-ca-cert-hash sha256:<hash> (printed by init and by 'kubestrap token create --print-join-command'), or --discovery-token-unsafe-skip-ca-verification to accept the risk"))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("discovery timeout %s must be positive", o.Timeout))
	}
	return errors.Join(errs...)
}

// Token discovers the cluster at o.Endpoint with a bootstrap token, as kubeadm does: read
// kube-public/cluster-info without trusting TLS, check the detached JWS signature that the
// controller-manager's bootstrapsigner adds for the token (proof that the content comes from
// someone who knows the token), pin the CA in it against o.CACertHashes, then read cluster-info
// again over TLS verified against that CA and require the same content. It retries until the
// signature appears or o.Timeout passes; mistakes retrying cannot fix (a wrong hash or secret)
// fail at once.
func Token(ctx context.Context, o TokenOptions) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	id, secret, _ := strings.Cut(o.Token, ".")
	endpointURL := "https://" + o.Endpoint
	insecure, err := newClient(endpointURL, nil, "", o.Log)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", endpointURL, err)
	}
	unknownAfter := o.UnknownTokenAfter
	if unknownAfter <= 0 {
		unknownAfter = DefaultUnknownTokenAfter
	}
	var rejectedSince time.Time

	attempt := func(ctx context.Context) (*Result, error) {
		cm, err := getClusterInfo(ctx, insecure)
		if err != nil {
			return nil, err
		}
		content := cm.Data[bootstrapapi.KubeConfigKey]
		if content == "" {
			return nil, final(fmt.Errorf("the cluster-info ConfigMap at %s has no %q key: this API server is not set up for token bootstrapping", endpointURL, bootstrapapi.KubeConfigKey))
		}
		server, caData, cas, err := parseClusterKubeconfig([]byte(content))
		if err != nil {
			return nil, final(err)
		}
		// The pin needs no signature: a CA whose key hashes to what the user brought out of band
		// is the cluster's, whoever served it. Checking it first turns a wrong hash into an
		// immediate, precise error even while the signature is missing. Only the pinned
		// certificates are vouched for, though: the rest of the unsigned bundle may be anyone's.
		var pinned *x509.Certificate
		if len(o.CACertHashes) > 0 {
			if pinned, err = CheckPins(cas, o.CACertHashes); err != nil {
				return nil, final(err)
			}
		}
		sig := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]
		if sig == "" {
			missing := fmt.Errorf("the cluster-info ConfigMap has no JWS signature for token id %q: the token is unknown to this cluster, has expired or was deleted (create one with 'kubestrap token create' on a control-plane node)", id)
			if pinned == nil {
				// Without a pinned CA the server is not trusted yet, so the token must not be
				// sent to it: wait for the signature until the timeout.
				return nil, missing
			}
			// Asking the API server about the token sends it, so the connection must end at the
			// cluster itself: verified against the pinned CA certificates alone. Trusting the
			// whole unsigned bundle would let a man in the middle who adds his own CA to it
			// receive the token.
			if tokenRejected(ctx, endpointURL, pinnedPEM(cas, o.CACertHashes), o.Token, o.Log) {
				if rejectedSince.IsZero() {
					rejectedSince = time.Now()
				}
				if time.Since(rejectedSince) >= unknownAfter {
					return nil, final(fmt.Errorf("%w; the API server (verified against the pinned CA) rejects the token too", missing))
				}
			} else {
				rejectedSince = time.Time{}
			}
			return nil, missing
		}
		if !jws.DetachedTokenIsValid(sig, content, id, secret) {
			return nil, final(fmt.Errorf("the JWS signature of cluster-info for token id %q does not match the token's secret: the token is wrong, or %s is not the cluster it was created for; refusing to trust this API server", id, endpointURL))
		}
		secure, err := newClient(endpointURL, caData, "", o.Log)
		if err != nil {
			return nil, final(fmt.Errorf("client for %s with the cluster CA: %w", endpointURL, err))
		}
		cm2, err := getClusterInfo(ctx, secure)
		if err != nil {
			if isCertificateError(err) {
				return nil, final(fmt.Errorf("the API server at %s does not present a certificate that the cluster CA from cluster-info verifies: %w", endpointURL, err))
			}
			return nil, err
		}
		if cm2.Data[bootstrapapi.KubeConfigKey] != content {
			return nil, final(fmt.Errorf("cluster-info read over TLS verified against the cluster CA differs from the copy read before verification: refusing to trust %s", endpointURL))
		}
		ca := pinned
		if ca == nil {
			ca = cas[0]
		}
		return &Result{Server: server, CAData: caData, CA: ca, Source: endpointURL}, nil
	}

	if o.Log != nil {
		fmt.Fprintf(o.Log, "[discovery] Reading cluster-info from %s and waiting for its JWS signature for token id %q\n", endpointURL, id)
	}
	res, err := poller{timeout: o.Timeout, interval: o.Interval, log: o.Log, what: "the cluster at " + endpointURL}.run(ctx, attempt)
	if err != nil {
		return nil, err
	}
	if o.Log != nil {
		how := "signature and pinned CA " + pki.PublicKeyPin(res.CA)
		if len(o.CACertHashes) == 0 {
			how = "signature (CA not pinned: --discovery-token-unsafe-skip-ca-verification)"
		}
		fmt.Fprintf(o.Log, "[discovery] Cluster-info verified by its %s; using API server %s\n", how, res.Server)
	}
	return res, nil
}

// pinnedPEM returns, PEM-encoded, the certificates of cas whose public key matches one of hashes.
func pinnedPEM(cas []*x509.Certificate, hashes []string) []byte {
	var out []byte
	for _, ca := range cas {
		if pinned(ca, hashes) {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
		}
	}
	return out
}

// tokenRejected reports whether the API server, verified against pinnedCAs (the certificates of
// cluster-info that match a --discovery-token-ca-cert-hash, never the rest of its unverified
// bundle), answers 401 to the token. Any other outcome (including network errors) is not a
// verdict.
func tokenRejected(ctx context.Context, server string, pinnedCAs []byte, token string, log io.Writer) bool {
	if len(pinnedCAs) == 0 {
		// newClient would fall back to an unverified connection; never send a token over one.
		return false
	}
	c, err := newClient(server, pinnedCAs, token, log)
	if err != nil {
		return false
	}
	err = c.Discovery().RESTClient().Get().AbsPath("/api").Do(ctx).Error()
	return apierrors.IsUnauthorized(err)
}

// isCertificateError recognises a failed TLS verification, which retrying cannot fix.
func isCertificateError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}
