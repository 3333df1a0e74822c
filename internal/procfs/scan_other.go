//go:build !linux

package procfs

import (
	"os"
	"path/filepath"
	"strconv"
)

// reader reads files below a /proc-like directory; outside Linux only fixture trees exist, so
// plain file reads are enough.
type reader struct {
	dir string
}

func newReader(dir string) (*reader, error) { return &reader{dir: dir}, nil }

func (r *reader) close() {}

func (r *reader) readFile(pid int, file string, buf *[]byte, _ bool) (int, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, strconv.Itoa(pid), file))
	if err != nil {
		return 0, err
	}
	if len(b) > len(*buf) {
		*buf = make([]byte, len(b))
	}
	return copy(*buf, b), nil
}
