// Package images owns kubestrap's air-gapped container images: OCI images of the control-plane
// components (and the pause image) built from a static kubestrap binary, written as an OCI
// image-layout archive and imported into containerd without any registry. The images carry the
// names the static-pod manifests use (imageRepository and kubernetesVersion, as kubeadm names
// them), so a kubelet on a host that can reach no registry finds them in its runtime's store.
//
// One layer holds the binary at /usr/local/bin/kubestrap and a symlink per component to it; every
// component image shares that layer and differs only in its entrypoint (/usr/local/bin/<component>,
// which argv[0] dispatch turns into that component). The labels say what the images are: built by
// kubestrap, from the unmodified upstream code compiled into the binary — not upstream's images.
package images

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// binDir is where the binary and its component symlinks live in the images: the path the
// static-pod manifests' commands find on PATH.
const binDir = "usr/local/bin"

// Label keys on every image's config; the values say the image is kubestrap's own build.
const (
	LabelBuiltBy    = "io.kubestrap.built-by"
	LabelComponent  = "io.kubestrap.component"
	LabelProvenance = "io.kubestrap.provenance"
)

// AnnotationImageName is the annotation containerd reads for an image's full name in an OCI
// layout's index (ocispec.AnnotationRefName holds the same name for other tools).
const AnnotationImageName = "io.containerd.image.name"

// Image is one image to build: its full reference and the component its entrypoint runs.
type Image struct {
	// Ref is the full name, e.g. registry.k8s.io/kube-apiserver:v1.37.2.
	Ref string
	// Component is the program the entrypoint runs: a bundled component name, or "pause".
	Component string
}

// PauseComponent is Image.Component for the pause image, whose binary is not kubestrap.
const PauseComponent = "pause"

// KubeProxyComponent is Image.Component for kube-proxy, whose image also carries iptables.
const KubeProxyComponent = "kube-proxy"

// Options says what to build.
type Options struct {
	// Binary is a complete, statically linked kubestrap binary (see CheckBinary).
	Binary string
	// PauseBinary is a static pause binary; the pause image is built only when it is set.
	PauseBinary string
	// Images are the images to build.
	Images []Image
	// KubernetesVersion is what the binary's components report; it goes into the labels.
	KubernetesVersion string
	// WorkDir holds the layers while they are built; it must exist. The caller removes it.
	WorkDir string
	// HostRoot is where the kube-proxy image's iptables is taken from: "" for this host's "/".
	HostRoot string
}

// Layout is a built set of images: an OCI index whose manifests name the images, and the blobs.
type Layout struct {
	Index ocispec.Index
	blobs map[digest.Digest]blob
}

// blob is one piece of content: in memory, or a byte range of a file.
type blob struct {
	data   []byte
	path   string
	offset int64
	size   int64
}

func (b blob) open() (io.ReadCloser, error) {
	if b.path == "" {
		return io.NopCloser(bytes.NewReader(b.data)), nil
	}
	f, err := os.Open(b.path)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, b.offset, b.size), f}, nil
}

// Open returns the content of blob d.
func (l *Layout) Open(d digest.Digest) (io.ReadCloser, error) {
	b, ok := l.blobs[d]
	if !ok {
		return nil, fmt.Errorf("no blob %s in the image layout", d)
	}
	return b.open()
}

// Blob returns the content of a small blob (a manifest or config) in memory.
func (l *Layout) Blob(d digest.Digest) ([]byte, error) {
	rc, err := l.Open(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Digests lists every blob, sorted.
func (l *Layout) Digests() []digest.Digest {
	out := make([]digest.Digest, 0, len(l.blobs))
	for d := range l.blobs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// CheckBinary refuses a binary that cannot run the components in an image with nothing else in
// it: one linked against libc (the default go build with cgo), or one that does not contain the
// bundled control plane (a front program that starts another binary).
func CheckBinary(path string) error {
	const howto = "hack/build.sh's release build carries one; or build one with: CGO_ENABLED=0 go build -o kubestrap-static ./cmd/kubestrap"
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("binary %s: not a Linux executable (%v); %s", path, err, howto)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s is dynamically linked (built with cgo), so it cannot run in an image without libc; %s", path, howto)
		}
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("binary %s: no Go build information (%v); %s", path, err, howto)
	}
	need := map[string]bool{"k8s.io/kubernetes": false, "go.etcd.io/etcd/server/v3": false}
	for _, d := range info.Deps {
		if _, ok := need[d.Path]; ok {
			need[d.Path] = true
		}
	}
	for mod, found := range need {
		if !found {
			return fmt.Errorf("binary %s does not contain the bundled control plane (no %s in it); %s", path, mod, howto)
		}
	}
	return nil
}

// Build builds the images of o into a layout whose large blobs are files under o.WorkDir.
func Build(o Options) (*Layout, error) {
	if err := CheckBinary(o.Binary); err != nil {
		return nil, err
	}
	return build(o)
}

// build is Build without the check of the binary, which unit tests cannot satisfy cheaply.
func build(o Options) (*Layout, error) {
	l := &Layout{Index: ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex},
		blobs: map[digest.Digest]blob{}}
	var components []string
	for _, im := range o.Images {
		if im.Component != PauseComponent {
			components = append(components, im.Component)
		}
	}
	var kubestrapLayer, pauseLayer, iptablesLayer ocispec.Descriptor
	var iptablesSources []string
	var err error
	if len(components) > 0 {
		if kubestrapLayer, err = l.addLayer(filepath.Join(o.WorkDir, "kubestrap-layer.tar"), func(tw *tar.Writer) error {
			return kubestrapFiles(tw, o.Binary, components)
		}); err != nil {
			return nil, err
		}
	}
	for _, im := range o.Images {
		layer, entry := kubestrapLayer, "/"+binDir+"/"+im.Component
		labels := map[string]string{
			LabelBuiltBy:   "kubestrap images",
			LabelComponent: im.Component,
			LabelProvenance: fmt.Sprintf("built by kubestrap from its own binary, which compiles the unmodified upstream %s %s; not an upstream image",
				im.Component, o.KubernetesVersion),
			ocispec.AnnotationTitle:   im.Component,
			ocispec.AnnotationVersion: o.KubernetesVersion,
		}
		user := ""
		layers := []ocispec.Descriptor{layer}
		if im.Component == KubeProxyComponent {
			if iptablesLayer.Digest == "" {
				root := o.HostRoot
				if root == "" {
					root = "/"
				}
				files, sources, err := hostIptables(root)
				if err != nil {
					return nil, fmt.Errorf("image %s: %w", im.Ref, err)
				}
				iptablesSources = sources
				if iptablesLayer, err = l.addLayer(filepath.Join(o.WorkDir, "iptables-layer.tar"), func(tw *tar.Writer) error {
					return hostLayerFiles(tw, files)
				}); err != nil {
					return nil, err
				}
			}
			layers = append(layers, iptablesLayer)
			labels[LabelProvenance] = fmt.Sprintf("built by kubestrap: kube-proxy from its own binary, which compiles the unmodified upstream kube-proxy %s; iptables copied from the building host (%s, with the libraries they load); not an upstream image",
				o.KubernetesVersion, strings.Join(iptablesSources, ", "))
		}
		if im.Component == PauseComponent {
			if o.PauseBinary == "" {
				return nil, fmt.Errorf("image %s: no pause binary given (build one as hack/realnode install does: a static gcc build of k8s.io/kubernetes' build/pause/linux/pause.c)", im.Ref)
			}
			if pauseLayer.Digest == "" {
				if pauseLayer, err = l.addLayer(filepath.Join(o.WorkDir, "pause-layer.tar"), func(tw *tar.Writer) error {
					return addFile(tw, "pause", o.PauseBinary)
				}); err != nil {
					return nil, err
				}
			}
			layers, entry = []ocispec.Descriptor{pauseLayer}, "/pause"
			labels[LabelProvenance] = "built by kubestrap from a static build of k8s.io/kubernetes' build/pause/linux/pause.c; not an upstream image"
			user = "65535:65535" // upstream's pause image runs as nobody too
		}
		if err := l.addImage(im.Ref, layers, entry, user, labels); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// kubestrapFiles writes the binary and one symlink per component into a layer.
func kubestrapFiles(tw *tar.Writer, binary string, components []string) error {
	for _, d := range []string{"usr/", "usr/local/", binDir + "/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	if err := addFile(tw, binDir+"/kubestrap", binary); err != nil {
		return err
	}
	for _, c := range components {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: binDir + "/" + c, Linkname: "kubestrap",
			Mode: 0o777, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	return nil
}

// addFile copies a host file into a layer as an executable owned by root, with a fixed time so
// the same binary always makes the same layer digest.
func addFile(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: st.Size(),
		ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("copying %s into the image: %w", src, err)
	}
	return nil
}

// addLayer writes an uncompressed layer to path (uncompressed: the images go from one disk to
// another, and the layer's digest is then also its diff ID) and records it as a blob.
func (l *Layout) addLayer(path string, fill func(*tar.Writer) error) (ocispec.Descriptor, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer f.Close()
	dg := digest.Canonical.Digester()
	cw := &countingWriter{w: io.MultiWriter(f, dg.Hash())}
	tw := tar.NewWriter(cw)
	if err := fill(tw); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("building layer %s: %w", path, err)
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := f.Close(); err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: dg.Digest(), Size: cw.n}
	l.blobs[d.Digest] = blob{path: path, size: cw.n}
	return d, nil
}

func (l *Layout) addJSON(mediaType string, v any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	l.blobs[d.Digest] = blob{data: data, size: d.Size}
	return d, nil
}

func (l *Layout) addImage(ref string, layers []ocispec.Descriptor, entrypoint, user string, labels map[string]string) error {
	var diffIDs []digest.Digest
	for _, d := range layers {
		diffIDs = append(diffIDs, d.Digest) // uncompressed: the digest is the diff ID
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config: ocispec.ImageConfig{
			User:       user,
			Entrypoint: []string{entrypoint},
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Labels:     labels,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	cd, err := l.addJSON(ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cd,
		Layers:    layers,
	}
	md, err := l.addJSON(ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return err
	}
	md.Platform = &cfg.Platform
	md.Annotations = map[string]string{AnnotationImageName: ref, ocispec.AnnotationRefName: ref}
	l.Index.Manifests = append(l.Index.Manifests, md)
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
