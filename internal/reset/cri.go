package reset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// DefaultCRISocket is the container runtime endpoint reset uses when none is given and the
// socket exists: containerd's, the kubelet's default.
const DefaultCRISocket = "unix:///run/containerd/containerd.sock"

// PodRuntime is the part of the CRI that reset needs: stop and remove every pod sandbox, as
// kubeadm reset does (its containers go with it), rather than waiting for the kubelet to give
// each static pod its termination grace period.
type PodRuntime interface {
	// RemoveAllPods stops and removes every pod sandbox and returns their names.
	RemoveAllPods(ctx context.Context) ([]string, error)
	Close() error
}

// criEndpoint is the runtime reset talks to: the one given, else the default when its socket
// exists on a real root ("" for none). Under another root dir nothing of the machine's runtime
// belongs to the root.
func criEndpoint(p paths.Paths, given string) string {
	if given != "" {
		return given
	}
	if !p.IsRealRoot() {
		return ""
	}
	if _, err := os.Stat(strings.TrimPrefix(DefaultCRISocket, "unix://")); err != nil {
		return ""
	}
	return DefaultCRISocket
}

// DialCRI connects to a CRI runtime at endpoint (unix:///path or a plain path).
func DialCRI(_ context.Context, endpoint string) (PodRuntime, error) {
	path, err := runmode.CRISocketPath(endpoint)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %s: %w", endpoint, err)
	}
	return &criRuntime{conn: conn, rs: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

type criRuntime struct {
	conn *grpc.ClientConn
	rs   runtimeapi.RuntimeServiceClient
}

func (c *criRuntime) Close() error { return c.conn.Close() }

func (c *criRuntime) RemoveAllPods(ctx context.Context) ([]string, error) {
	// Bounded: a runtime that does not answer must not hold reset up.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list, err := c.rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing pod sandboxes: %w", err)
	}
	var names []string
	var errs []error
	for _, s := range list.Items {
		name := s.Id
		if m := s.Metadata; m != nil {
			name = m.Namespace + "/" + m.Name
		}
		if _, err := c.rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stopping pod %s: %w", name, err))
			continue
		}
		if _, err := c.rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			errs = append(errs, fmt.Errorf("removing pod %s: %w", name, err))
			continue
		}
		names = append(names, name)
	}
	return names, errors.Join(errs...)
}
