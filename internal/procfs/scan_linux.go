package procfs

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// reader reads small files below a /proc directory with openat relative to one directory
// descriptor: three system calls per file, no path walk from "/" and no allocation for the
// path, which is what keeps a scan of thousands of processes cheap.
type reader struct {
	dirfd int
	dir   string
	// path is the NUL-terminated "<pid>/<file>" being opened, reused between reads.
	path []byte
}

func newReader(dir string) (*reader, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &reader{dirfd: fd, dir: dir, path: make([]byte, 0, 32)}, nil
}

func (r *reader) close() { syscall.Close(r.dirfd) }

func (r *reader) openat(pid int, file string) (int, error) {
	r.path = strconv.AppendInt(r.path[:0], int64(pid), 10)
	r.path = append(r.path, '/')
	r.path = append(r.path, file...)
	r.path = append(r.path, 0)
	for {
		fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(r.dirfd), uintptr(unsafe.Pointer(&r.path[0])),
			uintptr(syscall.O_RDONLY|syscall.O_CLOEXEC), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
}

// readFile reads <pid>/<file> whole into *buf (growing it as needed) and returns its length.
// small promises the file fits in *buf with room to spare (comm is at most 16 bytes), so that a
// short read ends it without the read that would return end-of-file. Errors are *os.PathError
// so that errors.Is(err, fs.ErrPermission) works.
func (r *reader) readFile(pid int, file string, buf *[]byte, small bool) (int, error) {
	fd, err := r.openat(pid, file)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: r.dir + "/" + strconv.Itoa(pid) + "/" + file, Err: err}
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
			return 0, &os.PathError{Op: "read", Path: r.dir + "/" + strconv.Itoa(pid) + "/" + file, Err: err}
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
