package images

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// WriteArchive writes l as an OCI image-layout tar archive (oci-layout, index.json and
// blobs/<alg>/<hex>), the format `kubestrap images import` and containerd's importer read.
func WriteArchive(w io.Writer, l *Layout) error {
	tw := tar.NewWriter(w)
	put := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size,
			ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	layoutFile, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	index, err := json.Marshal(l.Index)
	if err != nil {
		return err
	}
	if err := put(ocispec.ImageLayoutFile, int64(len(layoutFile)), strings.NewReader(string(layoutFile))); err != nil {
		return err
	}
	if err := put(ocispec.ImageIndexFile, int64(len(index)), strings.NewReader(string(index))); err != nil {
		return err
	}
	for _, d := range l.Digests() {
		rc, err := l.Open(d)
		if err != nil {
			return err
		}
		err = put(path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded()), l.blobs[d].size, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("writing blob %s: %w", d, err)
		}
	}
	return tw.Close()
}

// ReadArchive reads an OCI image-layout tar archive. Blobs are not read into memory: each is a
// byte range of the archive, read when it is imported (where containerd checks its digest).
func ReadArchive(file string) (*Layout, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	l := &Layout{blobs: map[digest.Digest]blob{}}
	var sawLayout, sawIndex bool
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not a readable tar archive: %w", file, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch {
		case name == ocispec.ImageLayoutFile:
			sawLayout = true
		case name == ocispec.ImageIndexFile:
			data, err := io.ReadAll(io.LimitReader(tr, 4<<20))
			if err != nil {
				return nil, fmt.Errorf("%s: reading %s: %w", file, name, err)
			}
			if err := json.Unmarshal(data, &l.Index); err != nil {
				return nil, fmt.Errorf("%s: %s is not an OCI index: %w", file, name, err)
			}
			sawIndex = true
		case strings.HasPrefix(name, ocispec.ImageBlobsDir+"/"):
			parts := strings.Split(name, "/")
			if len(parts) != 3 {
				continue
			}
			d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
			if err := d.Validate(); err != nil {
				return nil, fmt.Errorf("%s: blob %s: %w", file, name, err)
			}
			// The tar reader reads headers in whole blocks straight from the file, so the bytes
			// counted so far end exactly where this entry's content begins.
			l.blobs[d] = blob{path: file, offset: cr.n, size: h.Size}
		}
	}
	if !sawLayout || !sawIndex {
		return nil, fmt.Errorf("%s is not an OCI image layout archive (it needs %s and %s; make one with kubestrap images export)",
			file, ocispec.ImageLayoutFile, ocispec.ImageIndexFile)
	}
	for _, m := range l.Index.Manifests {
		if _, ok := l.blobs[m.Digest]; !ok {
			return nil, fmt.Errorf("%s: the index names manifest %s, which is not in the archive", file, m.Digest)
		}
	}
	return l, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
