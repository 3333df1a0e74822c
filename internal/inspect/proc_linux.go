package inspect

import (
	"fmt"
	"os"
	"syscall"
)

// procReader reads small files below a /proc directory with openat relative to one directory
// descriptor: three system calls per file and no path walk from "/", which is what keeps a scan
// of thousands of processes cheap.
type procReader struct {
	dirfd int
}

func newProcReader(dir string) (*procReader, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reading processes in %s: %w", dir, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	return &procReader{dirfd: fd}, nil
}

func (r *procReader) close() { syscall.Close(r.dirfd) }

// readFile reads <dir>/<file> whole into *buf (growing it as needed) and returns its length.
// small promises the file fits in *buf with room to spare (comm is at most 16 bytes), so that a
// short read ends it without the read that would return end-of-file. Errors are *os.PathError
// so that errors.Is(err, fs.ErrPermission) works.
func (r *procReader) readFile(dir, file string, buf *[]byte, small bool) (int, error) {
	rel := dir + "/" + file
	var fd int
	var err error
	for {
		fd, err = syscall.Openat(r.dirfd, rel, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	defer syscall.Close(fd)
	n := 0
	for {
		if n == len(*buf) {
			nb := make([]byte, 2*len(*buf))
			copy(nb, *buf)
			*buf = nb
		}
		m, err := syscall.Read(fd, (*buf)[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: rel, Err: err}
		}
		if m == 0 {
			return n, nil
		}
		n += m
		if small && n < len(*buf) {
			return n, nil
		}
	}
}
