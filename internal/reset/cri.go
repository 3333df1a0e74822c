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

	"github.com/kubestrap/kubestrap/internal/kubelet"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// PodRuntime is the part of the CRI that reset needs: stop and remove every pod sandbox, as
// kubeadm reset does (its containers go with it), rather than waiting for the kubelet to give
// each static pod its termination grace period.
type PodRuntime interface {
	// RemoveAllPods stops and removes every pod sandbox and returns their names.
	RemoveAllPods(ctx context.Context) ([]string, error)
	Close() error
}

// criEndpoint is the runtime reset talks to (see chooseCRIEndpoint), worked out once per reset;
// how it was chosen is logged then.
func (r *Reset) criEndpoint() string {
	r.cri.once.Do(func() {
		var flagsEnv []byte
		var found []string
		if r.p.IsRealRoot() && r.o.CRISocket == "" {
			flagsEnv, _ = os.ReadFile(r.p.KubeletFlagsEnv()) // absent on a node without a kubelet
			found = runmode.FoundCRIEndpoints(r.p, runmode.RealHost{}.Exists)
		}
		var note string
		r.cri.endpoint, note = chooseCRIEndpoint(r.o.CRISocket, r.p.IsRealRoot(), flagsEnv, found)
		if strings.HasPrefix(note, "WARNING") {
			fmt.Fprintf(r.log, "[reset] %s\n", note)
		} else if note != "" {
			logx.Printf(r.log, 1, "%s", note)
		}
	})
	return r.cri.endpoint
}

// chooseCRIEndpoint is the runtime reset stops and removes the pods through: the one given
// (--cri-socket); else, on a real root, the one this node's kubelet was set up with
// (--container-runtime-endpoint in kubeadm-flags.env, which init and join write), else the one
// runtime socket found on the host, as init and join detect it. "" for none: under another root
// dir nothing of the machine's runtime belongs to the root, and among several runtimes nothing
// says which one the kubelet used (the note, a warning then, says what to do).
func chooseCRIEndpoint(given string, realRoot bool, flagsEnv []byte, found []string) (endpoint, note string) {
	if given != "" || !realRoot {
		return given, ""
	}
	if e := kubelet.FlagsFromEnv(flagsEnv)["container-runtime-endpoint"]; e != "" {
		return e, "using the container runtime the kubelet was set up with (kubeadm-flags.env): " + e
	}
	e, err := runmode.CRIEndpoint("", found)
	switch {
	case e != "":
		return e, "using the one container runtime found: " + e
	case err == nil:
		return "", ""
	}
	return "", fmt.Sprintf("WARNING: found several container runtimes (%s) and no kubeadm-flags.env naming the kubelet's: pods are not stopped and removed through a runtime; pass --cri-socket to name the runtime", strings.Join(found, ", "))
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
