// Package procfs is kubestrap's one reader of the process table: /proc/PID/cmdline, comm, stat,
// maps and the mount namespace link, and the process listing. The supervisor (Stop, Status), reset
// (what to stop) and show-apiserver-options (which apiserver runs) all discover processes through
// it, each behind its own small interface so that their unit tests hand them a fake table or a
// fixture directory and never read the host's /proc.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FS is a procfs mounted at Root ("/proc" when empty; a fixture tree in tests).
type FS struct{ Root string }

// Dir is the directory FS reads.
func (fs FS) Dir() string {
	if fs.Root == "" {
		return "/proc"
	}
	return fs.Root
}

func (fs FS) file(pid int, name string) string {
	return filepath.Join(fs.Dir(), strconv.Itoa(pid), name)
}

// Pids lists the ids of all processes.
func (fs FS) Pids() ([]int, error) {
	f, err := os.Open(fs.Dir())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading processes in %s: %w", fs.Dir(), err)
	}
	return ParsePids(names), nil
}

// ParsePids keeps the names of a /proc listing that are process ids ("self", "sys", ... are not).
func ParsePids(names []string) []int {
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, ok := ParsePid(n); ok {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ParsePid parses a /proc entry name as a process id.
func ParsePid(name string) (int, bool) {
	if name == "" || name[0] < '1' || name[0] > '9' {
		return 0, false
	}
	pid, err := strconv.Atoi(name)
	return pid, err == nil
}

// Cmdline is the argv of pid (nil for a zombie or kernel thread); an error when the process is
// gone.
func (fs FS) Cmdline(pid int) ([]string, error) {
	data, err := os.ReadFile(fs.file(pid, "cmdline"))
	if err != nil {
		return nil, err
	}
	return SplitCmdline(data), nil
}

// SplitCmdline splits the contents of /proc/PID/cmdline: NUL-terminated words.
func SplitCmdline(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// Comm is pid's command name: the executable's file name truncated to 15 bytes.
func (fs FS) Comm(pid int) (string, error) {
	data, err := os.ReadFile(fs.file(pid, "comm"))
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(data, []byte{'\n'})), nil
}

// Stat holds the fields of /proc/PID/stat kubestrap looks at.
type Stat struct {
	State   byte
	PPID    int
	Session int
}

// Stat parses /proc/PID/stat. The command name in parentheses may itself hold spaces and
// parentheses, so the fields are counted from the last ')'.
func (fs FS) Stat(pid int) (Stat, error) {
	data, err := os.ReadFile(fs.file(pid, "stat"))
	if err != nil {
		return Stat{}, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// After ")": state ppid pgrp session ...
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 4 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	sid, _ := strconv.Atoi(f[3])
	return Stat{State: f[0][0], PPID: ppid, Session: sid}, nil
}

// Alive reports whether pid exists and is not a zombie: a dead child nobody has reaped yet is as
// stopped as it will ever be.
func (fs FS) Alive(pid int) bool {
	st, err := fs.Stat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X' && st.State != 'x'
}

// Parent is the parent pid of pid, 0 when unknown.
func (fs FS) Parent(pid int) int {
	st, err := fs.Stat(pid)
	if err != nil {
		return 0
	}
	return st.PPID
}

// MountNS identifies pid's mount namespace ("" when unknown), so that the processes of
// containers, whose paths look like the host's, are never taken for the host's.
func (fs FS) MountNS(pid int) string {
	ns, _ := os.Readlink(fs.file(pid, "ns/mnt"))
	return ns
}

// Mapping is one line of /proc/PID/maps: the addresses [Start, End) map the file with Inode on
// device Dev ("major:minor" in hex, as the kernel writes it) from Offset.
type Mapping struct {
	Start, End, Offset uint64
	Dev                string
	Inode              uint64
}

// ParseMapping reads a line of /proc/PID/maps, "start-end perms offset dev inode [path]"
// (addresses, offset and device in hex, inode in decimal); false for anything else.
func ParseMapping(line string) (Mapping, bool) {
	fs := strings.Fields(line)
	if len(fs) < 5 {
		return Mapping{}, false
	}
	lo, hi, ok := strings.Cut(fs[0], "-")
	if !ok {
		return Mapping{}, false
	}
	var m Mapping
	var errs [4]error
	m.Start, errs[0] = strconv.ParseUint(lo, 16, 64)
	m.End, errs[1] = strconv.ParseUint(hi, 16, 64)
	m.Offset, errs[2] = strconv.ParseUint(fs[2], 16, 64)
	m.Inode, errs[3] = strconv.ParseUint(fs[4], 10, 64)
	for _, err := range errs {
		if err != nil {
			return Mapping{}, false
		}
	}
	m.Dev = fs[3]
	return m, true
}
