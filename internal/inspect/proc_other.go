//go:build !linux

package inspect

import (
	"os"
	"path/filepath"
)

// procReader reads files below a /proc-like directory; outside Linux only fixture trees exist,
// so plain file reads are enough.
type procReader struct {
	dir string
}

func newProcReader(dir string) (*procReader, error) { return &procReader{dir: dir}, nil }

func (r *procReader) close() {}

func (r *procReader) readFile(dir, file string, buf *[]byte, _ bool) (int, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, dir, file))
	if err != nil {
		return 0, err
	}
	if len(b) > len(*buf) {
		*buf = make([]byte, len(b))
	}
	return copy(*buf, b), nil
}
