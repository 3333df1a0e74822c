package supervisor

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// HealthTimeout bounds one health request: a component that takes longer is not healthy.
const HealthTimeout = 2 * time.Second

// HealthChecker checks a component's health endpoint; CheckHealth is the real one.
type HealthChecker func(ctx context.Context, url string) error

// CheckHealth GETs url and requires 200. TLS is not verified and no proxy is used: the
// components serve /healthz, /readyz and /livez to anonymous clients on their own certificates,
// and what is asked is whether the process on this host answers, not who it is.
func CheckHealth(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health check %s: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health check %s: %w", url, err)
	}
	defer resp.Body.Close()
	// The body of a failing /readyz lists the failing checks: worth a line in the error.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		msg := strings.Join(strings.Fields(string(body)), " ")
		return fmt.Errorf("health check %s: %s: %s", url, resp.Status, msg)
	}
	return nil
}

// WaitHealthy polls url with CheckHealth every interval (200 ms when <= 0) until it answers 200
// or ctx ends; then the error names the last failure.
func WaitHealthy(ctx context.Context, url string, interval time.Duration) error {
	return waitHealthy(ctx, CheckHealth, url, interval)
}

func waitHealthy(ctx context.Context, check HealthChecker, url string, interval time.Duration) error {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	var last error
	err := wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
		last = check(ctx, url)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w (last error: %v)", url, err, last)
	}
	return nil
}
