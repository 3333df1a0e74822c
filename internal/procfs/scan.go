package procfs

import "bytes"

// Scan is one pass over many processes, for show-apiserver-options' look at every process of a
// host: the listing is taken once, and files are read relative to one open directory (on Linux)
// into one reused buffer, which keeps a host with thousands of processes a matter of
// milliseconds. A Scan is not safe for concurrent use; Close releases it.
type Scan struct {
	fs   FS
	pids []int
	r    *reader
	buf  []byte
}

// OpenScan lists the processes of fs and prepares to read their files.
func (fs FS) OpenScan() (*Scan, error) {
	pids, err := fs.Pids()
	if err != nil {
		return nil, err
	}
	r, err := newReader(fs.Dir())
	if err != nil {
		return nil, err
	}
	return &Scan{fs: fs, pids: pids, r: r, buf: make([]byte, 64)}, nil
}

// Close releases the scan's directory.
func (s *Scan) Close() { s.r.close() }

// Pids are the processes listed when the scan was opened, in listing order.
func (s *Scan) Pids() []int { return s.pids }

// Comm is pid's command name (see FS.Comm). Errors are *os.PathError, so that
// errors.Is(err, fs.ErrPermission) tells a hidden process from a gone one.
func (s *Scan) Comm(pid int) (string, error) {
	n, err := s.r.readFile(pid, "comm", &s.buf, true)
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(s.buf[:n], []byte{'\n'})), nil
}

// Cmdline is pid's argv (see FS.Cmdline); errors as for Comm.
func (s *Scan) Cmdline(pid int) ([]string, error) {
	n, err := s.r.readFile(pid, "cmdline", &s.buf, false)
	if err != nil {
		return nil, err
	}
	return SplitCmdline(s.buf[:n]), nil
}
