// Package discovery owns how a joining node finds and comes to trust its cluster, as kubeadm's
// join does (reference §5): token discovery (fetch kube-public/cluster-info without trusting TLS,
// verify its detached JWS signature with the bootstrap token, pin the CA by the SHA-256 of its
// public key, re-fetch over TLS verified against that CA) and file discovery (a kubeconfig from a
// path or an https URL, refreshed from cluster-info when it can be read). Its result is the API
// server URL and CA bundle a node's kubeconfigs are built from; it writes nothing.
package discovery

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/pki"
)

// DefaultInterval is the pause between discovery attempts. kubeadm waits 5 s; a shorter pause is
// what lets a join against a ready cluster finish in about a second, and the requests are cheap.
const DefaultInterval = 500 * time.Millisecond

// MaxInterval caps a configured interval, for the same reason.
const MaxInterval = time.Second

// firstPause is the pause after the first failed attempt; it doubles up to the interval.
const firstPause = 100 * time.Millisecond

// requestTimeout bounds one HTTP request, so that a black-holed endpoint is retried rather than
// hanging until the whole discovery timeout.
const requestTimeout = 10 * time.Second

// userAgent identifies discovery requests in the apiserver's audit log.
const userAgent = "kubestrap-join-discovery"

// Result is the validated cluster a node joins.
type Result struct {
	// Server is the API server URL from cluster-info (or the discovery file): the URL the node's
	// kubeconfigs use.
	Server string
	// CAData is the cluster CA bundle (PEM), and CA its first certificate.
	CAData []byte
	CA     *x509.Certificate
	// AuthInfo holds the credentials of a discovery file that carries some; nil otherwise. They
	// may be used for the TLS bootstrap when no bootstrap token is given.
	AuthInfo *clientcmdapi.AuthInfo
	// Source says where the result came from, for progress lines.
	Source string
}

// ValidateHash checks the format of one --discovery-token-ca-cert-hash value.
func ValidateHash(h string) error {
	algo, value, ok := strings.Cut(h, ":")
	if !ok {
		return fmt.Errorf("CA certificate hash %q has no format prefix: it must be \"sha256:\" followed by 64 hex digits (init prints it)", h)
	}
	if algo != "sha256" {
		return fmt.Errorf("CA certificate hash %q uses the unsupported format %q: only sha256 is supported", h, algo)
	}
	if b, err := hex.DecodeString(value); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("CA certificate hash %q is malformed: it must be \"sha256:\" followed by 64 hex digits", h)
	}
	return nil
}

// CheckPins accepts the first of cas whose public key hash (pki.PublicKeyPin, the one init
// prints) is one of hashes. Pinning the key rather than the certificate keeps a pin valid across
// a CA re-issued with the same key. The error names the hash the cluster actually has, so a user
// with a stale hash sees the difference at once.
func CheckPins(cas []*x509.Certificate, hashes []string) (*x509.Certificate, error) {
	if len(cas) == 0 {
		return nil, errors.New("cluster-info carries no CA certificate")
	}
	for _, ca := range cas {
		if pinned(ca, hashes) {
			return ca, nil
		}
	}
	want := strings.Join(hashes, ", ")
	if len(hashes) > 1 {
		want = "any of " + want
	}
	var got []string
	for _, ca := range cas {
		got = append(got, pki.PublicKeyPin(ca))
	}
	return nil, fmt.Errorf("the cluster CA's public key hash is %s, not %s: check --discovery-token-ca-cert-hash against the one 'kubestrap token create --print-join-command' prints on a control-plane node",
		strings.Join(got, ", "), want)
}

// pinned reports whether ca's public key hash is one of hashes, compared case-insensitively: a
// hash pasted in upper case is still the same hash.
func pinned(ca *x509.Certificate, hashes []string) bool {
	got := pki.PublicKeyPin(ca)
	return slices.ContainsFunc(hashes, func(h string) bool { return strings.EqualFold(h, got) })
}

// finalError ends the retry loop: retrying cannot fix it (a wrong hash, a bad signature).
type finalError struct{ err error }

func (e finalError) Error() string { return e.err.Error() }
func (e finalError) Unwrap() error { return e.err }

func final(err error) error { return finalError{err} }

func isFinal(err error) bool {
	var f finalError
	return errors.As(err, &f)
}

// poller retries an attempt until it succeeds, fails for good, or the timeout passes.
type poller struct {
	timeout, interval time.Duration
	log               io.Writer
	// what is named in the timeout error ("the cluster at https://...").
	what string
}

func (p poller) run(ctx context.Context, try func(ctx context.Context) (*Result, error)) (*Result, error) {
	interval := p.interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	if interval > MaxInterval {
		interval = MaxInterval
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	done := logx.Wait(p.log, "%s (up to %s)", p.what, p.timeout)
	res, err := p.poll(ctx, interval, try)
	done(err)
	return res, err
}

func (p poller) poll(ctx context.Context, interval time.Duration, try func(ctx context.Context) (*Result, error)) (*Result, error) {
	var (
		res        *Result
		last       error
		final      error
		lastLogged string
	)
	// Start fast and back off to the interval: right after `token create` the signature is
	// typically a few tens of milliseconds away. Backoff's cap ends the doubling there and keeps
	// the interval from then on.
	backoff := wait.Backoff{Duration: min(firstPause, interval), Factor: 2, Cap: interval, Steps: math.MaxInt32}
	err := backoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		r, err := try(ctx)
		if err == nil {
			res = r
			return true, nil
		}
		if isFinal(err) {
			final = err
			return false, err
		}
		if ctx.Err() != nil && last != nil {
			// The attempt was cut short by the deadline; the previous error says more.
			err = last
		}
		last = err
		// Say what is being waited for once per distinct reason, not once per attempt.
		if msg := err.Error(); msg != lastLogged && p.log != nil {
			fmt.Fprintf(p.log, "[discovery] Waiting for %s: %v\n", p.what, err)
			lastLogged = msg
		}
		return false, nil
	})
	switch {
	case err == nil:
		return res, nil
	case final != nil:
		return nil, final
	}
	if parent := context.Cause(ctx); parent != nil && !errors.Is(parent, context.DeadlineExceeded) {
		return nil, parent
	}
	return nil, fmt.Errorf("could not discover %s within %s: last error: %w", p.what, p.timeout, last)
}

// newClient returns a client for fetching cluster-info and probing the token, one per trust
// level (insecure, pinned CA, pinned CA with the token).
// log is the discovery log: at -v 2 each request is logged there (never its token).
func newClient(server string, caData []byte, bearer string, log io.Writer) (kubeclient.Interface, error) {
	rc := &rest.Config{
		Host:      server,
		Timeout:   requestTimeout,
		UserAgent: userAgent,
		// The poll interval already paces the requests; client-go's default limiter would only
		// add its own delays.
		QPS: -1,
	}
	if len(caData) == 0 {
		// Only until the signature over the content and the pinned CA have been checked: nothing
		// read through this client is trusted before that, and no credentials are sent over it.
		if bearer != "" {
			return nil, errors.New("refusing to send a token over a connection that is not verified against the cluster CA")
		}
		rc.TLSClientConfig.Insecure = true
	} else {
		rc.TLSClientConfig.CAData = caData
	}
	rc.BearerToken = bearer
	return kubeclient.FromRESTConfig(rc, kubeclient.Options{Timeout: rc.Timeout, UserAgent: rc.UserAgent, Log: log})
}

func getClusterInfo(ctx context.Context, c kubeclient.Interface) (*corev1.ConfigMap, error) {
	cm, err := c.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, err)
	}
	return cm, nil
}

// clusterOf returns the cluster entry of a kubeconfig: the current context's, or the only one.
func clusterOf(c *clientcmdapi.Config) (string, *clientcmdapi.Cluster, error) {
	if ctx, ok := c.Contexts[c.CurrentContext]; ok {
		if cl, ok := c.Clusters[ctx.Cluster]; ok {
			return ctx.Cluster, cl, nil
		}
	}
	if len(c.Clusters) == 1 {
		for name, cl := range c.Clusters {
			return name, cl, nil
		}
	}
	names := make([]string, 0, len(c.Clusters))
	for n := range c.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "", nil, errors.New("it defines no cluster")
	}
	return "", nil, fmt.Errorf("it defines several clusters (%s) and its current context names none of them", strings.Join(names, ", "))
}

// parseClusterKubeconfig reads the server and CA bundle of cluster-info's kubeconfig.
func parseClusterKubeconfig(data []byte) (server string, caData []byte, cas []*x509.Certificate, err error) {
	kc, err := clientcmd.Load(data)
	if err != nil {
		return "", nil, nil, fmt.Errorf("the kubeconfig in cluster-info cannot be parsed: %w", err)
	}
	_, cl, err := clusterOf(kc)
	if err != nil {
		return "", nil, nil, fmt.Errorf("the kubeconfig in cluster-info is malformed: %w", err)
	}
	if cl.Server == "" {
		return "", nil, nil, errors.New("the kubeconfig in cluster-info has no server URL")
	}
	if err := checkServerURL(cl.Server); err != nil {
		return "", nil, nil, fmt.Errorf("the kubeconfig in cluster-info: %w", err)
	}
	if len(cl.CertificateAuthorityData) == 0 {
		return "", nil, nil, errors.New("the kubeconfig in cluster-info carries no certificate-authority-data")
	}
	cas, err = certutil.ParseCertsPEM(cl.CertificateAuthorityData)
	if err != nil {
		return "", nil, nil, fmt.Errorf("the CA in cluster-info cannot be parsed: %w", err)
	}
	return cl.Server, cl.CertificateAuthorityData, cas, nil
}

// checkServerURL accepts only an https URL with a host: the node's bootstrap token and later its
// client certificate go to this server, and over plain http a token would travel in clear text.
func checkServerURL(server string) error {
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("the server URL %q is malformed: %w", server, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("the server URL %q is not an https URL with a host (such as https://192.168.0.10:6443): credentials are only ever sent over TLS", server)
	}
	return nil
}
