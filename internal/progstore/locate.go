package progstore

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/kubestrap/kubestrap/internal/procfs"
	"golang.org/x/sys/unix"
)

// The embedded program is a byte range of the running executable's file: go:embed puts it in
// the read-only data the kernel maps from that file. Install copies that range in the kernel
// (copy_file_range: no page faults on 200 MB of mapped data, no pass through user space, a
// reflink where the file system has them) instead of writing it out of memory, and does not hash
// it. Skipping the hash keeps what the store guarantees:
//
//   - The bytes are the ones the running program carries: the range is found through the
//     mapping that holds Data (its device and inode checked to be the opened executable's) and
//     samples of it compared with Data in memory before the copy, and the copy's size and samples
//     after it.
//   - Hashing them would only re-prove the build: the manifest's SHA-256 and the bytes were put in
//     this executable by the same build, and whoever could change its bytes could change the
//     manifest beside them (or the front program itself, which root runs anyway). Reading Data
//     from memory to hash it reads these same page-cache pages.
//   - They cannot change during the copy: Linux refuses writes to a file that is being executed
//     (ETXTBSY), and replacing the executable by a rename leaves the inode the copy reads.
//   - The copy is assembled in a private staging directory and renamed into place under the
//     hash's name as before, and every later use verifies owner, mode and SHA-256 (Verify).
//
// Anything unexpected (no /proc, an executable that is not one mapped file, a sample that
// differs) falls back to the copy from memory, hashed on the way.

// Locate finds data, a string the running process holds in memory mapped from the file at exe
// (/proc/self/exe for the running executable), as a byte range of that file: it returns the open
// file and the offset of data in it. maps is the process's memory map (/proc/self/maps).
func Locate(data, exe, maps string) (*os.File, int64, error) {
	if len(data) == 0 {
		return nil, 0, fmt.Errorf("no data")
	}
	f, err := os.Open(exe)
	if err != nil {
		return nil, 0, err
	}
	off, err := locate(data, f, maps)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, off, nil
}

func locate(data string, f *os.File, maps string) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	dev := fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
	m, err := os.Open(maps)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	addr := uint64(uintptr(unsafe.Pointer(unsafe.StringData(data))))
	end := addr + uint64(len(data))
	// Consecutive lines of the same file may split the range (the kernel keeps areas of other
	// permissions apart): follow them while they continue each other in memory and in the file.
	var found bool
	var off int64
	var next, nextOff uint64
	sc := bufio.NewScanner(m)
	for sc.Scan() {
		a, ok := procfs.ParseMapping(sc.Text())
		if !ok || a.Dev != dev || a.Inode != st.Ino {
			if found {
				break
			}
			continue
		}
		switch {
		case !found && a.Start <= addr && addr < a.End:
			found, off = true, int64(a.Offset+(addr-a.Start))
		case found && a.Start == next && a.Offset == nextOff:
		case found:
			return 0, fmt.Errorf("the mapping of %s that holds the data is not contiguous", f.Name())
		default:
			continue
		}
		if end <= a.End {
			return off, checkSamples(strings.NewReader(data), 0, f, off, int64(len(data)))
		}
		next, nextOff = a.End, a.Offset+(a.End-a.Start)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("the data is not mapped from %s", f.Name())
}

// sampleSize and samples: checkSamples compares this many bytes at the start, the end and
// evenly spaced places in between (about 70 KiB of a 200 MB program).
const (
	sampleSize = 4096
	samples    = 17
)

// checkSamples compares samples of the size bytes of a at aOff with those of b at bOff: enough to
// catch a wrong offset or a copy that went wrong as a whole (a short, empty or shifted copy), not
// a changed byte here and there (that is what the hash on later uses is for).
func checkSamples(a io.ReaderAt, aOff int64, b io.ReaderAt, bOff, size int64) error {
	bufA, bufB := make([]byte, sampleSize), make([]byte, sampleSize)
	for i := int64(0); i < samples; i++ {
		at := min(i*(size/(samples-1)), max(size-sampleSize, 0))
		n := min(sampleSize, size-at)
		if _, err := a.ReadAt(bufA[:n], aOff+at); err != nil {
			return fmt.Errorf("read %d bytes at %d: %w", n, aOff+at, err)
		}
		if _, err := b.ReadAt(bufB[:n], bOff+at); err != nil {
			return fmt.Errorf("read %d bytes at %d: %w", n, bOff+at, err)
		}
		if !bytes.Equal(bufA[:n], bufB[:n]) {
			return fmt.Errorf("the bytes at %d differ", at)
		}
	}
	return nil
}
