// Package controlplane owns waiting for the control plane init brought up: every component's
// health endpoint, then the controller-manager's controllers, with kubeadm-style progress and, on
// failure, each unhealthy component's last error and output. Choosing and running the mode is
// internal/runmode's.
package controlplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubestrap/kubestrap/internal/kubeclient"
	"github.com/kubestrap/kubestrap/internal/logx"
)

// Target is one component to wait for.
type Target struct {
	Name    string
	URL     string
	LogFile string // its output, shown when it does not become healthy
	// LogHint says where the output is when kubestrap has no file of it (systemd's journal, the
	// container runtime).
	LogHint string
}

// Output says where to look when t does not become healthy: the last lines of its log file, or
// where its output is when kubestrap has no file of it.
func (t Target) Output() string {
	if t.LogFile == "" {
		return "see its output with: " + t.LogHint
	}
	return fmt.Sprintf("last lines of %s:\n%s", t.LogFile, Tail(t.LogFile, 20))
}

// CheckFunc returns nil when url answers healthy.
type CheckFunc func(ctx context.Context, url string) error

// Wait polls every target's health URL until all answer, printing progress to log, or fails after
// timeout naming each unhealthy component, its last error and the tail of its log.
func Wait(ctx context.Context, targets []Target, timeout, interval time.Duration, check CheckFunc, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	fmt.Fprintf(log, "[wait-control-plane] Waiting for the control plane to become healthy (timeout %s)\n", timeout)
	var names []string
	for _, t := range targets {
		names = append(names, t.Name)
	}
	done := logx.Wait(log, "health of %s (up to %s)", strings.Join(names, ", "), timeout)

	// mu guards lastErr and the log: the targets are polled in parallel, and log may be a plain
	// writer (a bytes.Buffer in tests) that is not safe for concurrent writes.
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(log, format, args...)
	}
	lastErr := map[string]error{}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			say("[wait-control-plane] Waiting for %s at %s\n", t.Name, t.URL)
			// The deadline is ctx's; the poll ends with it, and lastErr says why.
			_ = wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
				err := check(ctx, t.URL)
				mu.Lock()
				lastErr[t.Name] = err
				mu.Unlock()
				if err != nil {
					return false, nil
				}
				say("[wait-control-plane] %s is healthy after %s\n", t.Name, time.Since(start).Round(time.Millisecond))
				return true, nil
			})
		}()
	}
	wg.Wait()

	var failed []string
	for _, t := range targets {
		if err := lastErr[t.Name]; err != nil {
			failed = append(failed, fmt.Sprintf("%s is not healthy at %s: %v\n%s", t.Name, t.URL, err, t.Output()))
		}
	}
	if len(failed) > 0 {
		err := fmt.Errorf("the control plane did not become healthy within %s:\n%s", timeout, strings.Join(failed, "\n"))
		done(fmt.Errorf("%d of %d components unhealthy", len(failed), len(targets)))
		return err
	}
	done(nil)
	return nil
}

// Tail returns the last n lines of a file, or a note why it cannot.
func Tail(path string, n int) string {
	if path == "" {
		return "  (no log file)"
	}
	f, err := os.Open(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, "  "+sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return "  (empty)"
	}
	return strings.Join(lines, "\n")
}

// WaitControllers waits until the controller-manager runs its controllers, seen by the ServiceAccount
// "default" that its serviceaccount controller creates in namespace "default". /healthz answers
// seconds before that (the controller-manager initialises every controller first), and until then
// Pods cannot be created and joining nodes' certificate requests are not approved.
func WaitControllers(ctx context.Context, c kubeclient.Interface, timeout, interval time.Duration, log io.Writer) error {
	start := time.Now()
	done := logx.Wait(log, "the controller-manager's controllers: ServiceAccount default/default (up to %s)", timeout)
	var last error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		_, last = c.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return last == nil, nil
	})
	if err != nil {
		if last == nil {
			last = err
		}
		done(last)
		return fmt.Errorf("the controller-manager did not start its controllers within %s (no ServiceAccount default/default: %v); see its log", timeout, last)
	}
	done(nil)
	fmt.Fprintf(log, "[wait-control-plane] The controller-manager's controllers are running after %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}
