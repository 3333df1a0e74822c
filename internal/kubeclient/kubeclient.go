// Package kubeclient is the one place kubestrap builds Kubernetes API clients and retries API
// calls that fail for a passing reason. Every client gets the same request timeout default and the
// -v 2 request log (logx.ConfigureClient), whatever it is built from.
package kubeclient

import (
	"context"
	"fmt"
	"io"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubestrap/kubestrap/internal/logx"
)

// ClientQPS and ClientBurst replace client-go's default client-side rate limit (5 requests per
// second after a burst of 10), which made each init phase that sends a dozen requests sit out
// about a second in the limiter while the apiserver was idle. These are kubectl's values; the
// apiserver's own priority and fairness still protects it.
const (
	ClientQPS   = 50
	ClientBurst = 300
)

// DefaultTimeout bounds each request when Options.Timeout is zero: long enough for a loaded
// apiserver, short enough that a dead one does not hang a command.
const DefaultTimeout = 30 * time.Second

// Options are the settings a call site may change on the clients it builds.
type Options struct {
	// Timeout bounds each request; zero means DefaultTimeout, negative means none.
	Timeout time.Duration
	// UserAgent replaces client-go's default when set.
	UserAgent string
	// Log receives one line per request at -v 2 (never a header or token); nil logs nothing.
	Log io.Writer
}

// FromKubeconfigFile builds a client from a kubeconfig file's current context.
func FromKubeconfigFile(path string, o Options) (Interface, error) {
	rc, err := RESTConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	c, err := FromRESTConfig(rc, o)
	if err != nil {
		return nil, fmt.Errorf("client from %s: %w", path, err)
	}
	return c, nil
}

// FromKubeconfig builds a client from a parsed kubeconfig's current context.
func FromKubeconfig(kc *clientcmdapi.Config, o Options) (Interface, error) {
	rc, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("client configuration: %w", err)
	}
	return FromRESTConfig(rc, o)
}

// FromRESTConfig builds a client from rc, which it does not change: the options are applied
// to a copy.
func FromRESTConfig(rc *rest.Config, o Options) (Interface, error) {
	return NewForConfig(Configure(rc, o))
}

// Configure returns a copy of rc with o applied, for clients that are not a clientset (a raw
// REST client, for example).
func Configure(rc *rest.Config, o Options) *rest.Config {
	rc = rest.CopyConfig(rc)
	switch {
	case o.Timeout > 0:
		rc.Timeout = o.Timeout
	case o.Timeout == 0:
		rc.Timeout = DefaultTimeout
	default:
		rc.Timeout = 0
	}
	if o.UserAgent != "" {
		rc.UserAgent = o.UserAgent
	}
	if rc.QPS == 0 && rc.RateLimiter == nil { // unset: a caller's own limit (or -1, none) stays
		rc.QPS, rc.Burst = ClientQPS, ClientBurst
	}
	logx.ConfigureClient(rc, o.Log)
	return rc
}

// RESTConfigFromFile loads a kubeconfig file into a rest.Config.
func RESTConfigFromFile(path string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return rc, nil
}

// RetryInterval paces Retry's attempts.
const RetryInterval = 250 * time.Millisecond

// Retry calls fn every RetryInterval until it succeeds, returns an error permanent reports as
// final, or timeout passes (ctx ending stops it too); it then returns fn's last error, or the
// context's when fn never ran. permanent nil retries every error: right after /readyz an
// apiserver can deny a request for a moment while its RBAC caches fill, so callers acting as
// cluster admin treat even Forbidden as passing.
func Retry(ctx context.Context, timeout time.Duration, permanent func(error) bool, fn func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, RetryInterval, timeout, true, func(ctx context.Context) (bool, error) {
		err := fn(ctx)
		if err == nil {
			return true, nil
		}
		if permanent != nil && permanent(err) {
			return false, err
		}
		last = err
		return false, nil
	})
	if err != nil && last != nil && wait.Interrupted(err) {
		return last
	}
	return err
}

// PermanentAPIError reports answers retrying cannot change: denied, unauthenticated, not found,
// invalid, already there.
func PermanentAPIError(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsInvalid(err) || apierrors.IsAlreadyExists(err)
}
