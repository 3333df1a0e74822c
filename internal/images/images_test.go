package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var testImages = []Image{
	{Ref: "registry.k8s.io/etcd:3.7.0-0", Component: "etcd"},
	{Ref: "registry.k8s.io/kube-apiserver:v1.37.2", Component: "kube-apiserver"},
	{Ref: "registry.k8s.io/kube-controller-manager:v1.37.2", Component: "kube-controller-manager"},
	{Ref: "registry.k8s.io/kube-scheduler:v1.37.2", Component: "kube-scheduler"},
	{Ref: "registry.k8s.io/pause:3.10.2", Component: PauseComponent},
}

// buildTest builds the test images from stand-in binaries (the layout does not depend on what
// the binary is; CheckBinary is tested on its own).
func buildTest(t *testing.T) (*Layout, []byte, []byte) {
	t.Helper()
	dir := t.TempDir()
	bin := bytes.Repeat([]byte("kubestrap binary "), 100000) // over one write chunk
	pause := []byte("pause binary")
	if err := os.WriteFile(filepath.Join(dir, "kubestrap"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pause"), pause, 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := build(Options{Binary: filepath.Join(dir, "kubestrap"), PauseBinary: filepath.Join(dir, "pause"),
		Images: testImages, KubernetesVersion: "v1.37.2", WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	return l, bin, pause
}

// readVerified reads blob d and checks that its content has that digest.
func readVerified(t *testing.T, l *Layout, d digest.Digest) []byte {
	t.Helper()
	data, err := l.Blob(d)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(data); got != d {
		t.Fatalf("blob %s has content with digest %s", d, got)
	}
	return data
}

// layerFiles lists a layer's entries: regular files by content, symlinks by target.
func layerFiles(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			if h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 {
				t.Errorf("%s: mode %o owner %d:%d, want 0755 root", h.Name, h.Mode, h.Uid, h.Gid)
			}
			out[h.Name] = string(b)
		case tar.TypeSymlink:
			out[h.Name] = "-> " + h.Linkname
		}
	}
}

func TestBuildLayout(t *testing.T) {
	l, bin, pause := buildTest(t)
	if l.Index.SchemaVersion != 2 || l.Index.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("index: schema %d, media type %q", l.Index.SchemaVersion, l.Index.MediaType)
	}
	if len(l.Index.Manifests) != len(testImages) {
		t.Fatalf("%d manifests, want %d", len(l.Index.Manifests), len(testImages))
	}
	var kubestrapLayer digest.Digest
	for i, md := range l.Index.Manifests {
		want := testImages[i]
		if md.Annotations[AnnotationImageName] != want.Ref || md.Annotations[ocispec.AnnotationRefName] != want.Ref {
			t.Errorf("manifest %d names %v, want %s", i, md.Annotations, want.Ref)
		}
		if md.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("%s: manifest media type %q", want.Ref, md.MediaType)
		}
		raw := readVerified(t, l, md.Digest)
		if int64(len(raw)) != md.Size {
			t.Errorf("%s: manifest size %d, descriptor says %d", want.Ref, len(raw), md.Size)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m.SchemaVersion != 2 || m.Config.MediaType != ocispec.MediaTypeImageConfig || len(m.Layers) != 1 ||
			m.Layers[0].MediaType != ocispec.MediaTypeImageLayer {
			t.Fatalf("%s: manifest %s", want.Ref, raw)
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(readVerified(t, l, m.Config.Digest), &cfg); err != nil {
			t.Fatal(err)
		}
		layer := readVerified(t, l, m.Layers[0].Digest)
		if int64(len(layer)) != m.Layers[0].Size {
			t.Errorf("%s: layer size %d, descriptor says %d", want.Ref, len(layer), m.Layers[0].Size)
		}
		// Uncompressed: the diff ID is the layer's own digest.
		if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != m.Layers[0].Digest {
			t.Errorf("%s: rootfs %+v, want the layer digest %s", want.Ref, cfg.RootFS, m.Layers[0].Digest)
		}
		if cfg.OS != "linux" || cfg.Architecture == "" {
			t.Errorf("%s: platform %s/%s", want.Ref, cfg.OS, cfg.Architecture)
		}
		if cfg.Config.Labels[LabelBuiltBy] == "" || !strings.Contains(cfg.Config.Labels[LabelProvenance], "not an upstream image") {
			t.Errorf("%s: labels %v do not say the image is kubestrap-built", want.Ref, cfg.Config.Labels)
		}
		files := layerFiles(t, layer)
		if want.Component == PauseComponent {
			if got := cfg.Config.Entrypoint; len(got) != 1 || got[0] != "/pause" {
				t.Errorf("pause entrypoint %v", got)
			}
			if files["pause"] != string(pause) || len(files) != 1 {
				t.Errorf("pause layer holds %d entries", len(files))
			}
			continue
		}
		if got := cfg.Config.Entrypoint; len(got) != 1 || got[0] != "/usr/local/bin/"+want.Component {
			t.Errorf("%s: entrypoint %v, want /usr/local/bin/%s", want.Ref, got, want.Component)
		}
		if files["usr/local/bin/kubestrap"] != string(bin) {
			t.Errorf("%s: layer does not hold the binary at usr/local/bin/kubestrap", want.Ref)
		}
		for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			if files["usr/local/bin/"+c] != "-> kubestrap" {
				t.Errorf("%s: usr/local/bin/%s is %q, want a symlink to kubestrap", want.Ref, c, files["usr/local/bin/"+c])
			}
		}
		// All component images share one layer: the binary is stored (and imported) once.
		if kubestrapLayer == "" {
			kubestrapLayer = m.Layers[0].Digest
		} else if m.Layers[0].Digest != kubestrapLayer {
			t.Errorf("%s: layer %s, the other components use %s", want.Ref, m.Layers[0].Digest, kubestrapLayer)
		}
	}
}

// The same binary makes the same images, so re-importing them changes nothing.
func TestBuildIsReproducible(t *testing.T) {
	a, _, _ := buildTest(t)
	b, _, _ := buildTest(t)
	for i := range a.Index.Manifests {
		if a.Index.Manifests[i].Digest != b.Index.Manifests[i].Digest {
			t.Errorf("%s: manifest %s, then %s", testImages[i].Ref, a.Index.Manifests[i].Digest, b.Index.Manifests[i].Digest)
		}
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	l, _, _ := buildTest(t)
	path := filepath.Join(t.TempDir(), "images.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(f, l); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	back, err := ReadArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(l.Index)
	got, _ := json.Marshal(back.Index)
	if !bytes.Equal(want, got) {
		t.Errorf("index read back\n%s\nwant\n%s", got, want)
	}
	if len(back.Digests()) != len(l.Digests()) {
		t.Fatalf("%d blobs read back, want %d", len(back.Digests()), len(l.Digests()))
	}
	for _, d := range l.Digests() {
		readVerified(t, back, d)
	}
}

func TestReadArchiveRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	notTar := filepath.Join(dir, "x.tar")
	os.WriteFile(notTar, []byte("hello"), 0o600)
	if _, err := ReadArchive(notTar); err == nil {
		t.Error("a file that is no tar archive was accepted")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	plain := filepath.Join(dir, "plain.tar")
	os.WriteFile(plain, buf.Bytes(), 0o600)
	_, err := ReadArchive(plain)
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Errorf("a tar without index.json: %v", err)
	}
}

func TestBuildWithoutPauseBinaryFails(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kubestrap"), []byte("x"), 0o755)
	_, err := build(Options{Binary: filepath.Join(dir, "kubestrap"), Images: testImages, WorkDir: dir})
	if err == nil || !strings.Contains(err.Error(), "pause") {
		t.Errorf("pause image without a pause binary: %v", err)
	}
}

func TestCheckBinary(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	if err := CheckBinary(script); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("a shell script: %v", err)
	}
	// The test binary is a Go executable without the bundled control plane: refused either as
	// dynamically linked or as incomplete, and the message says how to build the right one.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	err = CheckBinary(self)
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0 go build") ||
		!(strings.Contains(err.Error(), "dynamically linked") || strings.Contains(err.Error(), "does not contain the bundled control plane")) {
		t.Errorf("the test binary: %v", err)
	}
}
