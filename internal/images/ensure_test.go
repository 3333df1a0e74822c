package images

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
)

// fakeRuntime is a container runtime holding images by name; Import adds the layout's images.
type fakeRuntime struct {
	images   map[string]bool
	sandbox  string
	imported []string
	// lag is how many more Has calls report an imported image missing, as containerd's CRI
	// view trails an import.
	lag    int
	closed bool
}

func (f *fakeRuntime) Has(_ context.Context, ref string) (bool, error) {
	if f.images[ref] && slices.Contains(f.imported, ref) && f.lag > 0 {
		f.lag--
		return false, nil
	}
	return f.images[ref], nil
}

func (f *fakeRuntime) SandboxImage(context.Context) (string, error) { return f.sandbox, nil }

func (f *fakeRuntime) Import(_ context.Context, l *Layout, _ io.Writer) error {
	for _, m := range l.Index.Manifests {
		name := m.Annotations[AnnotationImageName]
		f.images[name] = true
		f.imported = append(f.imported, name)
	}
	return nil
}

func (f *fakeRuntime) Close() error { f.closed = true; return nil }

type ensureRun struct {
	rt         *fakeRuntime
	log        bytes.Buffer
	binaryUsed bool
	built      []string
}

// ensure runs Ensure against rt with stand-in binaries, which the unchecked build accepts.
func ensure(t *testing.T, cfg *config.Config, rt *fakeRuntime, pause bool, dryRun bool) (*ensureRun, error) {
	t.Helper()
	return ensureWith(t, Ensure, cfg, rt, pause, dryRun)
}

func ensureWith(t *testing.T, fn func(context.Context, *config.Config, EnsureOptions) error, cfg *config.Config, rt *fakeRuntime, pause bool, dryRun bool) (*ensureRun, error) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubestrap")
	if err := os.WriteFile(bin, []byte("kubestrap binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &ensureRun{rt: rt}
	o := EnsureOptions{
		Endpoint: "unix:///run/containerd/containerd.sock",
		Dial:     func(context.Context, string) (Runtime, error) { return rt, nil },
		Binary:   func() (string, error) { r.binaryUsed = true; return bin, nil },
		DryRun:   dryRun,
		Log:      &r.log,
		build: func(o Options) (*Layout, error) {
			o.HostRoot = fakeIptablesRoot(t)
			for _, im := range o.Images {
				r.built = append(r.built, im.Ref)
			}
			return build(o)
		},
	}
	if pause {
		o.PauseBinary = filepath.Join(dir, "pause")
		if err := os.WriteFile(o.PauseBinary, minimalELF(), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r, fn(context.Background(), cfg, o)
}

const (
	etcdRef   = "registry.k8s.io/etcd:3.7.0-0"
	apiRef    = "registry.k8s.io/kube-apiserver:v1.37.2"
	kcmRef    = "registry.k8s.io/kube-controller-manager:v1.37.2"
	schedRef  = "registry.k8s.io/kube-scheduler:v1.37.2"
	csrRef    = "registry.k8s.io/kubestrap-csr-approver:v1.37.2"
	proxyRef  = "registry.k8s.io/kube-proxy:v1.37.2"
	pauseRef  = "registry.k8s.io/pause:3.10.2"
	socketURL = "unix:///run/containerd/containerd.sock"
)

func TestEnsureImportsOnlyWhatIsMissing(t *testing.T) {
	rt := &fakeRuntime{images: map[string]bool{apiRef: true, pauseRef: true}}
	r, err := ensure(t, configtest.Init("10.0.0.10", "cp-1"), rt, false, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{etcdRef, kcmRef, schedRef, csrRef, proxyRef}
	if !slices.Equal(r.built, want) || !slices.Equal(rt.imported, want) {
		t.Errorf("built %v, imported %v; want %v", r.built, rt.imported, want)
	}
	for _, ref := range []string{apiRef, pauseRef} {
		if !strings.Contains(r.log.String(), "[images] Using existing image "+ref+"\n") {
			t.Errorf("no note that %s is kept:\n%s", ref, r.log.String())
		}
	}
	if !rt.closed {
		t.Error("the runtime connection was not closed")
	}

	// A second run finds everything and builds nothing, not even asking for the binary.
	r2, err := ensure(t, configtest.Init("10.0.0.10", "cp-1"), rt, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if r2.binaryUsed || len(r2.built) != 0 || len(rt.imported) != len(want) {
		t.Errorf("second run: binary used %v, built %v, imported %v", r2.binaryUsed, r2.built, rt.imported)
	}
}

func TestEnsureWaitsForTheRuntimeToListImports(t *testing.T) {
	rt := &fakeRuntime{images: map[string]bool{pauseRef: true}, lag: 3}
	if _, err := ensure(t, configtest.Init("10.0.0.10", "cp-1"), rt, false, false); err != nil {
		t.Fatal(err)
	}
	if rt.lag != 0 {
		t.Errorf("Ensure returned before the runtime listed the imports (lag left %d)", rt.lag)
	}
}

func TestEnsureFollowsTheConfiguration(t *testing.T) {
	cfg := configtest.Init("10.0.0.10", "cp-1")
	cfg.Cluster.ImageRepository = "registry.example.com/k8s"
	cfg.Cluster.Etcd.External = &config.ExternalEtcd{Endpoints: []string{"https://10.0.0.5:2379"}}
	cfg.Kubestrap.CSRApprover.Disabled = true
	cfg.Cluster.Proxy.Disabled = true
	rt := &fakeRuntime{images: map[string]bool{"registry.example.com/k8s/pause:3.10.2": true}}
	r, err := ensure(t, cfg, rt, false, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"registry.example.com/k8s/kube-apiserver:v1.37.2", "registry.example.com/k8s/kube-controller-manager:v1.37.2", "registry.example.com/k8s/kube-scheduler:v1.37.2"}
	if !slices.Equal(r.built, want) {
		t.Errorf("built %v, want %v (no etcd image with external etcd, no approver or kube-proxy when disabled)", r.built, want)
	}
}

// TestEnsureWorker: a joining worker gets kube-proxy's image and the pause image, under the
// cluster's repository, and nothing of the control plane's; kube-proxy's not when the cluster
// disabled the proxy; what the runtime has is kept.
func TestEnsureWorker(t *testing.T) {
	rt := &fakeRuntime{images: map[string]bool{}}
	r, err := ensureWith(t, EnsureWorker, configtest.Init("10.0.0.10", "cp-1"), rt, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{proxyRef, pauseRef}; !slices.Equal(r.built, want) || !slices.Equal(rt.imported, want) {
		t.Errorf("built %v, imported %v; want %v", r.built, rt.imported, want)
	}

	cfg := configtest.Init("10.0.0.10", "cp-1")
	cfg.Cluster.ImageRepository = "registry.example.com/k8s"
	cfg.Cluster.Proxy.Disabled = true
	rt = &fakeRuntime{images: map[string]bool{}}
	r, err = ensureWith(t, EnsureWorker, cfg, rt, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"registry.example.com/k8s/pause:3.10.2"}; !slices.Equal(r.built, want) {
		t.Errorf("with proxy.disabled built %v, want %v", r.built, want)
	}
	r, err = ensureWith(t, EnsureWorker, cfg, rt, false, false)
	if err != nil || r.binaryUsed || len(r.built) != 0 || !strings.Contains(r.log.String(), "[images] Using existing image registry.example.com/k8s/pause:3.10.2\n") {
		t.Errorf("second run: %v, binary used %v, built %v\n%s", err, r.binaryUsed, r.built, r.log.String())
	}
}

func TestEnsurePauseNeedsAPauseBinary(t *testing.T) {
	rt := &fakeRuntime{images: map[string]bool{}}
	r, err := ensure(t, configtest.Init("10.0.0.10", "cp-1"), rt, false, false)
	if err == nil || !strings.Contains(err.Error(), "no pod sandbox image "+pauseRef) || !strings.Contains(err.Error(), "--pause-binary") {
		t.Fatalf("err = %v, want one naming the sandbox image and --pause-binary", err)
	}
	// Refused before any work: nothing built, nothing imported.
	if r.binaryUsed || len(r.built) != 0 || len(rt.imported) != 0 {
		t.Errorf("binary used %v, built %v, imported %v", r.binaryUsed, r.built, rt.imported)
	}

	// With one, the pause image is built from it along with the rest.
	r, err = ensure(t, configtest.Init("10.0.0.10", "cp-1"), rt, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rt.imported, pauseRef) || len(rt.imported) != 7 {
		t.Errorf("imported %v, want the six component images and %s", rt.imported, pauseRef)
	}
}

func TestEnsureRefusesADynamicPauseBinary(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "pause")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{images: map[string]bool{}}
	err := Ensure(context.Background(), configtest.Init("10.0.0.10", "cp-1"), EnsureOptions{
		Endpoint: socketURL, Dial: func(context.Context, string) (Runtime, error) { return rt, nil },
		Binary: func() (string, error) { return "", errors.New("not reached") }, PauseBinary: script, Log: io.Discard,
	})
	if err == nil || !strings.Contains(err.Error(), "--pause-binary") || !strings.Contains(err.Error(), "not a Linux executable") {
		t.Fatalf("err = %v", err)
	}
	if len(rt.imported) != 0 {
		t.Errorf("imported %v", rt.imported)
	}
}

func TestEnsureDryRun(t *testing.T) {
	rt := &fakeRuntime{images: map[string]bool{apiRef: true, pauseRef: true}}
	r, err := ensure(t, configtest.Init("10.0.0.10", "cp-1"), rt, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.binaryUsed || len(r.built) != 0 || len(rt.imported) != 0 {
		t.Errorf("dry run: binary used %v, built %v, imported %v", r.binaryUsed, r.built, rt.imported)
	}
	for _, ref := range []string{etcdRef, kcmRef, schedRef, csrRef, proxyRef} {
		if !strings.Contains(r.log.String(), "[dryrun] Would build image "+ref+" from this binary and import it into the container runtime at "+socketURL+"\n") {
			t.Errorf("dry run does not say it would import %s:\n%s", ref, r.log.String())
		}
	}
	if strings.Contains(r.log.String(), "Would build image "+apiRef) {
		t.Errorf("dry run would import an image the runtime has:\n%s", r.log.String())
	}

	// No runtime: a dry run lists everything and says a real run would stop; a real run fails.
	var log bytes.Buffer
	noRuntime := func(context.Context, string) (Runtime, error) {
		return nil, errors.New("no container runtime at " + socketURL)
	}
	o := EnsureOptions{Endpoint: socketURL, Dial: noRuntime, Binary: func() (string, error) { return "", errors.New("not reached") }, DryRun: true, Log: &log}
	if err := Ensure(context.Background(), configtest.Init("10.0.0.10", "cp-1"), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "no container runtime at") || !strings.Contains(log.String(), "Would fail here") || !strings.Contains(log.String(), "[dryrun]   "+pauseRef+"\n") {
		t.Errorf("dry run without a runtime:\n%s", log.String())
	}
	o.DryRun = false
	if err := Ensure(context.Background(), configtest.Init("10.0.0.10", "cp-1"), o); err == nil || !strings.Contains(err.Error(), "no container runtime") {
		t.Errorf("err = %v, want the dial's error", err)
	}
}

func TestEnsureWarnsAboutAnotherSandboxImage(t *testing.T) {
	rt := &fakeRuntime{images: map[string]bool{pauseRef: true}, sandbox: "registry.k8s.io/pause:3.8"}
	r, err := ensure(t, configtest.Init("10.0.0.10", "cp-1"), rt, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.log.String(), "WARNING: the container runtime runs pod sandboxes from registry.k8s.io/pause:3.8") {
		t.Errorf("no warning about the runtime's sandbox image:\n%s", r.log.String())
	}
	if slices.Contains(rt.imported, "registry.k8s.io/pause:3.8") {
		t.Error("imported the pause image under another version's name")
	}
}

func TestDialRuntimeWithoutSocket(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "containerd.sock")
	_, err := DialRuntime(context.Background(), "unix://"+missing)
	if err == nil || !strings.Contains(err.Error(), "no container runtime at unix://"+missing) || !strings.Contains(err.Error(), "criSocket") {
		t.Fatalf("err = %v", err)
	}
	if _, err := DialRuntime(context.Background(), "tcp://10.0.0.1:1234"); err == nil || !strings.Contains(err.Error(), "only unix sockets") {
		t.Fatalf("err = %v", err)
	}
}

// minimalELF is an ELF header with no program headers: a static executable as far as the check
// of --pause-binary can tell (it has no interpreter).
func minimalELF() []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1                // 64-bit, little-endian, version 1
	binary.LittleEndian.PutUint16(h[16:], 2)  // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 62) // x86-64
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64) // header size
	return h
}

// fakeIptablesRoot is a host root whose iptables commands all resolve to one static program, as
// hostIptables finds them on a Debian host.
func fakeIptablesRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	sbin := filepath.Join(root, "usr", "sbin")
	if err := os.MkdirAll(sbin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sbin, "xtables-nft-multi"), minimalELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range iptablesCommands {
		if err := os.Symlink("xtables-nft-multi", filepath.Join(sbin, c)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A binary that cannot go into an image stops the phase before anything is imported, with the
// binary's reason.
func TestEnsureStopsWithoutAUsableBinary(t *testing.T) {
	rt := &fakeRuntime{images: map[string]bool{pauseRef: true}}
	err := Ensure(context.Background(), configtest.Init("10.0.0.10", "cp-1"), EnsureOptions{
		Endpoint: socketURL, Dial: func(context.Context, string) (Runtime, error) { return rt, nil },
		Binary: func() (string, error) { return "", errors.New("binary /x is dynamically linked") }, Log: io.Discard,
	})
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("err = %v", err)
	}
	if len(rt.imported) != 0 {
		t.Errorf("imported %v", rt.imported)
	}
}
