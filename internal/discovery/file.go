package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
)

// maxDiscoveryFileSize bounds what is read from a discovery URL; a kubeconfig is a few KiB.
const maxDiscoveryFileSize = 1 << 20

// FileOptions configure file discovery.
type FileOptions struct {
	// Location is a kubeconfig file path or an https URL serving one.
	Location string
	// Timeout bounds the whole discovery (timeouts.discovery); Interval as for TokenOptions.
	Timeout  time.Duration
	Interval time.Duration
	// HTTPClient fetches an https Location; nil means a client trusting the system roots.
	HTTPClient *http.Client
	Log        io.Writer
}

// IsURL reports whether a discovery location is an https URL rather than a path.
func IsURL(location string) bool {
	u, err := url.Parse(location)
	return err == nil && u.Scheme == "https"
}

// File discovers the cluster from a kubeconfig, as kubeadm's file and https discovery do. The
// kubeconfig must embed its CA, which is trusted because the operator brought the file; the
// cluster is then read through it, and cluster-info, when readable, fills in a CA the file lacks
// and warns about a server URL that differs. Credentials in the file are returned for the TLS
// bootstrap.
func File(ctx context.Context, o FileOptions) (*Result, error) {
	if o.Location == "" {
		return nil, errors.New("no discovery file: pass --discovery-file with a kubeconfig path or an https URL")
	}
	if o.Timeout <= 0 {
		return nil, fmt.Errorf("discovery timeout %s must be positive", o.Timeout)
	}
	shown := displayLocation(o.Location)
	data, err := readLocation(ctx, o)
	if err != nil {
		return nil, err
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("discovery file %s is not a kubeconfig: %w", shown, err)
	}
	_, cl, err := clusterOf(kc)
	if err != nil {
		return nil, fmt.Errorf("discovery file %s: %w", shown, err)
	}
	if cl.Server == "" {
		return nil, fmt.Errorf("discovery file %s: its cluster has no server URL", shown)
	}
	if err := checkServerURL(cl.Server); err != nil {
		return nil, fmt.Errorf("discovery file %s: %w", shown, err)
	}
	if len(cl.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("discovery file %s must embed the cluster CA (certificate-authority-data): a CA referenced by path (%q) is not available on the joining node", shown, cl.CertificateAuthority)
	}
	cas, err := certutil.ParseCertsPEM(cl.CertificateAuthorityData)
	if err != nil {
		return nil, fmt.Errorf("discovery file %s: its CA cannot be parsed: %w", shown, err)
	}
	var auth *clientcmdapi.AuthInfo
	if ctx, ok := kc.Contexts[kc.CurrentContext]; ok {
		auth = kc.AuthInfos[ctx.AuthInfo]
	}
	if auth != nil && !hasCredentials(auth) {
		auth = nil
	}
	if auth != nil && (auth.ClientCertificate != "" || auth.ClientKey != "" || auth.TokenFile != "") {
		return nil, fmt.Errorf("discovery file %s must embed its credentials (client-certificate-data, client-key-data or token), not reference files", shown)
	}

	rc := &rest.Config{Host: cl.Server, Timeout: requestTimeout, UserAgent: userAgent, QPS: -1}
	rc.TLSClientConfig.CAData = cl.CertificateAuthorityData
	if auth != nil {
		rc.BearerToken = auth.Token
		rc.TLSClientConfig.CertData = auth.ClientCertificateData
		rc.TLSClientConfig.KeyData = auth.ClientKeyData
	}
	client, err := kubeclient.FromRESTConfig(rc, kubeclient.Options{Timeout: rc.Timeout, UserAgent: rc.UserAgent, Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cl.Server, err)
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "[discovery] Using the cluster %s from the discovery file %s\n", cl.Server, shown)
	}
	res := &Result{Server: cl.Server, CAData: cl.CertificateAuthorityData, CA: cas[0], AuthInfo: auth, Source: shown}
	refreshed, err := poller{timeout: o.Timeout, interval: o.Interval, log: o.Log, what: "the cluster at " + cl.Server}.run(ctx, func(ctx context.Context) (*Result, error) {
		cm, err := getClusterInfo(ctx, client)
		switch {
		case err == nil:
		case apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsUnauthorized(err):
			// The TLS connection verified against the file's CA, which is all the trust file
			// discovery needs; cluster-info only refreshes it.
			if o.Log != nil {
				fmt.Fprintf(o.Log, "[discovery] WARNING: cannot read cluster-info to refresh the discovery file (%v); the TLS certificate is valid, so proceeding\n", err)
			}
			return res, nil
		case isCertificateError(err):
			return nil, final(fmt.Errorf("the API server at %s does not present a certificate that the CA of %s verifies: %w", cl.Server, shown, err))
		default:
			return nil, err
		}
		server, _, _, perr := parseClusterKubeconfig([]byte(cm.Data[bootstrapapi.KubeConfigKey]))
		if perr != nil {
			if o.Log != nil {
				fmt.Fprintf(o.Log, "[discovery] WARNING: cluster-info is not usable (%v); the TLS certificate is valid, so proceeding\n", perr)
			}
			return res, nil
		}
		if server != cl.Server && o.Log != nil {
			fmt.Fprintf(o.Log, "[discovery] WARNING: the API server %s of the discovery file differs from %s in cluster-info; using the discovery file's\n", cl.Server, server)
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	return refreshed, nil
}

func readLocation(ctx context.Context, o FileOptions) ([]byte, error) {
	shown := displayLocation(o.Location)
	if u, err := url.Parse(o.Location); err == nil && u.Scheme == "http" {
		// The file may carry credentials and always carries the CA every later check trusts:
		// over plain http anyone on the path could replace it.
		return nil, fmt.Errorf("discovery URL %s is plain http: serve the discovery file over https, or copy it to this node and pass its path", shown)
	}
	if !IsURL(o.Location) {
		data, err := os.ReadFile(o.Location)
		if err != nil {
			return nil, fmt.Errorf("reading the discovery file: %w", err)
		}
		return data, nil
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: requestTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.Location, nil)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("discovery URL %s: %w", shown, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// A *url.Error repeats the URL with its query; say what failed without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("fetching the discovery kubeconfig from %s: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the discovery kubeconfig from %s: HTTP status %d", shown, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryFileSize))
	if err != nil {
		return nil, fmt.Errorf("fetching the discovery kubeconfig from %s: %w", shown, err)
	}
	return data, nil
}

// hasCredentials reports whether an AuthInfo authenticates at all.
func hasCredentials(a *clientcmdapi.AuthInfo) bool {
	return a.Token != "" || a.TokenFile != "" ||
		(len(a.ClientCertificateData) > 0 || a.ClientCertificate != "") && (len(a.ClientKeyData) > 0 || a.ClientKey != "")
}

// displayLocation is a discovery location as errors and progress lines show it: an https URL
// without user info and query, which may hold credentials (a password, a pre-signed URL's
// signature); a path as it is.
func displayLocation(location string) string {
	u, err := url.Parse(location)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return location
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		c.RawQuery = "<redacted>"
	}
	c.Fragment = ""
	return c.String()
}
