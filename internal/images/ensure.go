package images

// init's and join's images phases: the images a static-pod control plane of this configuration
// (or a worker) runs, checked against the node's container runtime, and the missing ones built
// from this binary and imported, so that a node with no registry access gets a control plane, or
// runs its pods.

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/progstore"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// Runtime is the node's container runtime, as far as the images phase needs it.
type Runtime interface {
	// Has reports whether the runtime has an image named ref. It is the question the kubelet
	// asks before it pulls (the CRI's ImageStatus, by name), so an image found here is one the
	// kubelet runs without a registry.
	Has(ctx context.Context, ref string) (bool, error)
	// SandboxImage is the image the runtime says it runs pod sandboxes from (the "sandboxImage"
	// of its verbose CRI status, which kubeadm reads too), or "" when it does not say.
	SandboxImage(ctx context.Context) (string, error)
	// Import puts every image of l into the runtime.
	Import(ctx context.Context, l *Layout, out io.Writer) error
	Close() error
}

// EnsureOptions say where the images go and what they are built from.
type EnsureOptions struct {
	// Endpoint is the runtime's CRI endpoint (nodeRegistration.criSocket), unix:///path.
	Endpoint string
	// Dial connects to the runtime at Endpoint; DialRuntime outside tests.
	Dial func(ctx context.Context, endpoint string) (Runtime, error)
	// Binary returns the complete, static kubestrap to build the images from (ThisBinary
	// outside tests). It is called only when an image is missing, so a node that has them all
	// needs no such binary.
	Binary func() (string, error)
	// PauseBinary is a static pause program for the sandbox image, needed only when the runtime
	// lacks that image: a Go program cannot carry k8s.io/kubernetes' pause.c.
	PauseBinary string
	// DryRun prints what would be imported and imports nothing.
	DryRun bool
	Log    io.Writer
	// PresentTimeout bounds the wait for the runtime to list what was just imported.
	PresentTimeout time.Duration

	// build replaces Build in unit tests, whose stand-in binaries CheckBinary refuses.
	build func(Options) (*Layout, error)
}

// PhaseOptions are an images phase's inputs beyond the configuration, the same for init's and a
// worker join's.
type PhaseOptions struct {
	// PauseBinary is a static pause program, needed when the runtime lacks the sandbox image.
	PauseBinary string
	// Dial and Binary replace DialRuntime and ThisBinary in tests.
	Dial   func(ctx context.Context, endpoint string) (Runtime, error)
	Binary func() (string, error)
}

// Ensure returns the options of Ensure and EnsureWorker for the runtime at endpoint: the real
// runtime and this binary unless a test replaced them. explain turns why this binary cannot be
// built from into the phase's error (what it needs the binary for, what to do instead).
func (o PhaseOptions) Ensure(endpoint string, dryRun bool, log io.Writer, explain func(error) error) EnsureOptions {
	e := EnsureOptions{Endpoint: endpoint, Dial: o.Dial, Binary: o.Binary, PauseBinary: o.PauseBinary, DryRun: dryRun, Log: log}
	if e.Dial == nil {
		e.Dial = DialRuntime
	}
	if e.Binary == nil {
		e.Binary = func() (string, error) {
			bin, err := ThisBinary()
			if err != nil {
				return "", explain(err)
			}
			return bin, nil
		}
	}
	return e
}

// Ensure makes the node's runtime hold every image cfg's static pods and the kubelet's pod
// sandboxes need: the images the runtime already has (by name, as the kubelet looks them up) are
// left alone, whatever their content — one pulled from a registry or imported earlier serves as
// well; the others are built from this binary (the pause image from o.PauseBinary) and imported.
func Ensure(ctx context.Context, cfg *config.Config, o EnsureOptions) error {
	want, err := List(cfg, true)
	if err != nil {
		return err
	}
	return ensureImages(ctx, cfg, want, o)
}

// EnsureWorker is Ensure for a joining worker: the images of WorkerList (kube-proxy's unless
// proxy.disabled in the cluster's configuration, and the pause image), by the same rules.
func EnsureWorker(ctx context.Context, cfg *config.Config, o EnsureOptions) error {
	return ensureImages(ctx, cfg, WorkerList(cfg), o)
}

func ensureImages(ctx context.Context, cfg *config.Config, want []Image, o EnsureOptions) error {
	pause := PauseImage(cfg)
	rt, err := o.Dial(ctx, o.Endpoint)
	if err != nil {
		if o.DryRun {
			fmt.Fprintf(o.Log, "[dryrun] %v\n[dryrun] Would fail here without it; with a runtime that has none of them, would build from this binary and import:\n", err)
			for _, im := range want {
				fmt.Fprintf(o.Log, "[dryrun]   %s\n", im.Ref)
			}
			return nil
		}
		return err
	}
	defer rt.Close()

	sandbox, err := rt.SandboxImage(ctx)
	if err != nil {
		return fmt.Errorf("container runtime at %s: %w", o.Endpoint, err)
	}
	if sandbox != "" && sandbox != pause {
		// kubeadm's preflight warns about the same mismatch. The pause image is imported under
		// kubeadm's name only: naming it as another pause version would misstate what it is.
		has, err := rt.Has(ctx, sandbox)
		if err != nil {
			return fmt.Errorf("container runtime at %s: image %s: %w", o.Endpoint, sandbox, err)
		}
		if !has {
			fmt.Fprintf(o.Log, "[images] WARNING: the container runtime runs pod sandboxes from %s, which it does not have and kubestrap does not build; without a registry no pod starts. Set its sandbox image to %s (containerd: [plugins.'io.containerd.cri.v1.images'.pinned_images] sandbox)\n", sandbox, pause)
		}
	}

	var missing []Image
	for _, im := range want {
		has, err := rt.Has(ctx, im.Ref)
		if err != nil {
			return fmt.Errorf("container runtime at %s: image %s: %w", o.Endpoint, im.Ref, err)
		}
		if has {
			fmt.Fprintf(o.Log, "[images] Using existing image %s\n", im.Ref)
			continue
		}
		missing = append(missing, im)
	}
	if len(missing) == 0 {
		return nil
	}
	for _, im := range missing {
		if im.Component != PauseComponent {
			continue
		}
		if o.PauseBinary != "" {
			if err := checkStatic(o.PauseBinary); err != nil {
				return fmt.Errorf("--pause-binary: %w", err)
			}
			continue
		}
		return fmt.Errorf("the container runtime at %s has no pod sandbox image %s, and kubestrap cannot build it by itself: "+
			"it is k8s.io/kubernetes' build/pause/linux/pause.c, a C program this Go binary does not carry. "+
			"Pass a static build of it with --pause-binary (hack/realnode install makes one: gcc -static), "+
			"or import it once with 'kubestrap images import --pause-binary PATH', or load %s into the runtime from elsewhere; "+
			"a node whose runtime pulls from a registry can skip this phase (--skip-phases images)", o.Endpoint, im.Ref, im.Ref)
	}
	if o.DryRun {
		for _, im := range missing {
			fmt.Fprintf(o.Log, "[dryrun] Would build image %s from this binary and import it into the container runtime at %s\n", im.Ref, o.Endpoint)
		}
		return nil
	}

	bin, err := o.Binary()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "kubestrap-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	build := o.build
	if build == nil {
		build = Build
	}
	fmt.Fprintf(o.Log, "[images] Building %d image(s) from %s for the container runtime at %s\n", len(missing), bin, o.Endpoint)
	l, err := build(Options{Binary: bin, PauseBinary: o.PauseBinary, Images: missing, KubernetesVersion: imageVersion(cfg), WorkDir: work})
	if err != nil {
		return err
	}
	if err := rt.Import(ctx, l, o.Log); err != nil {
		return fmt.Errorf("importing into the container runtime at %s: %w", o.Endpoint, err)
	}
	// The CRI's view of the images follows the import through containerd's events; the phase is
	// done when the kubelet would find every image.
	timeout := o.PresentTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	deadline := time.Now().Add(timeout)
	for _, im := range missing {
		for {
			has, err := rt.Has(ctx, im.Ref)
			if err != nil {
				return fmt.Errorf("container runtime at %s: image %s: %w", o.Endpoint, im.Ref, err)
			}
			if has {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("imported %s, but the container runtime at %s does not list it after %s", im.Ref, o.Endpoint, timeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func imageVersion(cfg *config.Config) string {
	if v := cfg.Cluster.KubernetesVersion; v != "" {
		return v
	}
	return config.BundledKubernetesVersion
}

// ThisBinary is the complete, static kubestrap the images are built from: the component program
// this front carries (extracted to its store, as for any component run), or the running binary
// itself. It fails, saying how to build one, when that binary cannot run in an image.
func ThisBinary() (string, error) {
	var bin string
	if progstore.IsFront() {
		dir, err := progstore.DispatchDir(os.Getenv, os.Geteuid())
		if err != nil {
			return "", err
		}
		if bin, err = progstore.ForRoot(dir, io.Discard); err != nil {
			return "", fmt.Errorf("extracting the component program for the images: %w", err)
		}
	} else {
		self, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("finding this binary: %w", err)
		}
		bin = self
	}
	if err := CheckBinary(bin); err != nil {
		return "", err
	}
	return bin, nil
}

// DialRuntime connects to the container runtime at a CRI endpoint (unix:///path). The socket must
// exist and answer the CRI; importing also needs containerd's own API on it.
func DialRuntime(ctx context.Context, endpoint string) (Runtime, error) {
	path, err := runmode.CRISocketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no container runtime at %s (nodeRegistration.criSocket): %w; static-pod mode runs the control plane in the kubelet's container runtime: start containerd, or set nodeRegistration.criSocket to your runtime's socket", endpoint, err)
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %s: %w", endpoint, err)
	}
	r := &criRuntime{conn: conn, socket: path, rs: runtimeapi.NewRuntimeServiceClient(conn), is: runtimeapi.NewImageServiceClient(conn)}
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := r.rs.Version(vctx, &runtimeapi.VersionRequest{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("the container runtime at %s does not answer the CRI: %w", endpoint, err)
	}
	return r, nil
}

type criRuntime struct {
	conn   *grpc.ClientConn
	socket string
	rs     runtimeapi.RuntimeServiceClient
	is     runtimeapi.ImageServiceClient
}

func (r *criRuntime) Close() error { return r.conn.Close() }

func (r *criRuntime) Has(ctx context.Context, ref string) (bool, error) {
	resp, err := r.is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return false, err
	}
	return resp.Image != nil, nil
}

func (r *criRuntime) SandboxImage(ctx context.Context) (string, error) {
	resp, err := r.rs.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return "", fmt.Errorf("runtime status: %w", err)
	}
	var c struct {
		SandboxImage string `json:"sandboxImage"`
	}
	// containerd 2.x no longer reports it (its default is kubeadm's name); CRI-O and
	// containerd 1.x do.
	if s, ok := resp.Info["config"]; ok {
		_ = json.Unmarshal([]byte(s), &c)
	}
	return c.SandboxImage, nil
}

func (r *criRuntime) Import(ctx context.Context, l *Layout, out io.Writer) error {
	return importInto(ctx, r.conn, r.socket, l, out)
}

// checkStatic refuses a program that cannot run in an image with nothing else in it.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, so it cannot run in an image without libc: build it with -static", path)
		}
	}
	return nil
}
