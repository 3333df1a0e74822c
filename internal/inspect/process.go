package inspect

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/procfs"
)

// kubestrapName is the multi-call binary's own name; `kubestrap kube-apiserver ...` runs the
// bundled apiserver under it.
const kubestrapName = "kubestrap"

// ProcScanner finds kube-apiserver processes in a /proc tree.
type ProcScanner struct {
	// ProcDir is the proc filesystem ("/proc" on a host; a fixture tree in tests).
	ProcDir string
	// Root is the cluster's root directory. Unless it is the real root, only processes whose
	// command line names a file under it count, so that several clusters on one machine (each in
	// its own --root-dir) do not see each other's apiservers.
	Root paths.Paths
	// ExtraComms are further comm values worth a cmdline read because the process may be kubestrap
	// under another file name (the caller passes its own executable's name).
	ExtraComms []string

	// readHook, when set, is consulted before each file read; tests use it to simulate
	// permission errors, which running as root cannot produce with file modes.
	readHook func(pid int, file string) error
}

// Process is one kube-apiserver process.
type Process struct {
	PID  int
	Comm string
	// Argv is the full command line, argv[0] included.
	Argv []string
}

// argStart is the index of the first argument after the program (and the kube-apiserver
// subcommand of a multi-call invocation).
func (p Process) argStart() int {
	if len(p.Argv) > 1 && p.Argv[1] == Component && filepath.Base(p.Argv[0]) != Component {
		return 2
	}
	return 1
}

// DeniedProcess is a candidate whose command line could not be read.
type DeniedProcess struct {
	PID  int
	Comm string
	Err  error
}

// ScanResult is what one pass over /proc found.
type ScanResult struct {
	// Processes are the kube-apiserver processes that belong to the root, by pid.
	Processes []Process
	// Denied are processes that looked like kube-apiserver (by comm) but whose cmdline could not
	// be read, typically because /proc is mounted with hidepid or the process is another user's.
	Denied []DeniedProcess
	// OutsideRoot are kube-apiserver processes ignored because their command line refers to no
	// file under Root.
	OutsideRoot []Process
	// Scanned counts the process directories seen; Unreadable those whose comm could not be read
	// for lack of permission.
	Scanned, Unreadable int
}

// Scan reads comm of every process (one small read) and the command line only of candidates, so
// that a host with thousands of processes is scanned in milliseconds.
func (s ProcScanner) Scan() (ScanResult, error) {
	var res ScanResult
	scan, err := procfs.FS{Root: s.ProcDir}.OpenScan()
	if err != nil {
		return res, fmt.Errorf("reading processes: %w", err)
	}
	defer scan.Close()

	for _, pid := range scan.Pids() {
		res.Scanned++
		comm, err := s.comm(scan, pid)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				res.Unreadable++
			}
			// Anything else (the process exited meanwhile) is not worth reporting.
			continue
		}
		direct := comm == Component
		if !direct && !s.mayBeKubestrap(comm) {
			continue
		}
		argv, err := s.cmdline(scan, pid)
		if err != nil {
			if direct && errors.Is(err, fs.ErrPermission) {
				res.Denied = append(res.Denied, DeniedProcess{PID: pid, Comm: comm, Err: err})
			}
			continue
		}
		if !isAPIServer(direct, argv) {
			continue
		}
		p := Process{PID: pid, Comm: comm, Argv: argv}
		if s.Root.IsRealRoot() || s.Root.Root() == "" || refersTo(argv, s.Root) {
			res.Processes = append(res.Processes, p)
		} else {
			res.OutsideRoot = append(res.OutsideRoot, p)
		}
	}
	// Readdir order is arbitrary; pid order makes listings and "which one?" messages stable.
	for _, ps := range [][]Process{res.Processes, res.OutsideRoot} {
		sort.Slice(ps, func(i, j int) bool { return ps[i].PID < ps[j].PID })
	}
	sort.Slice(res.Denied, func(i, j int) bool { return res.Denied[i].PID < res.Denied[j].PID })
	return res, nil
}

func (s ProcScanner) comm(scan *procfs.Scan, pid int) (string, error) {
	if s.readHook != nil {
		if err := s.readHook(pid, "comm"); err != nil {
			return "", err
		}
	}
	return scan.Comm(pid)
}

func (s ProcScanner) cmdline(scan *procfs.Scan, pid int) ([]string, error) {
	if s.readHook != nil {
		if err := s.readHook(pid, "cmdline"); err != nil {
			return nil, err
		}
	}
	return scan.Cmdline(pid)
}

// mayBeKubestrap reports whether a process with this comm could be kubestrap running the bundled
// apiserver: comm is the executable's file name truncated to 15 bytes, and "exe" is what a
// process re-executed through /proc/self/exe shows.
func (s ProcScanner) mayBeKubestrap(comm string) bool {
	if strings.HasPrefix(comm, kubestrapName) || comm == "exe" {
		return true
	}
	for _, c := range s.ExtraComms {
		if c != "" && comm == truncComm(c) {
			return true
		}
	}
	return false
}

// truncComm shortens an executable name the way the kernel does for comm (TASK_COMM_LEN 16).
func truncComm(name string) string {
	if len(name) > 15 {
		return name[:15]
	}
	return name
}

// isAPIServer decides from argv whether a candidate runs kube-apiserver: by argv[0] (a
// kube-apiserver symlink or binary) or as the multi-call subcommand.
func isAPIServer(commMatched bool, argv []string) bool {
	if len(argv) == 0 {
		// Zombies and kernel threads have an empty command line.
		return false
	}
	if commMatched || filepath.Base(argv[0]) == Component {
		return true
	}
	return len(argv) > 1 && argv[1] == Component
}

// refersTo reports whether any word of the command line (or any comma-separated part of a flag's
// value) is the root or a path under it.
func refersTo(argv []string, root paths.Paths) bool {
	dir := root.Root()
	for _, a := range argv {
		if !strings.Contains(a, dir) {
			continue
		}
		if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") {
			a = v
		}
		for _, part := range strings.Split(a, ",") {
			if strings.HasPrefix(part, dir) && root.Contains(part) {
				return true
			}
		}
	}
	return false
}

// Invocation turns a process into the options it runs with.
func (p Process) Invocation(cat Catalog) *Invocation {
	start := p.argStart()
	if start > len(p.Argv) {
		start = len(p.Argv)
	}
	inv := &Invocation{
		Source:   SourceProcess,
		PID:      p.PID,
		Binary:   strings.Join(p.Argv[:start], " "),
		Location: fmt.Sprintf("/proc/%d/cmdline", p.PID),
	}
	inv.Flags, inv.Extra = ParseArgs(p.Argv[start:], cat, inv.Label())
	inv.markUnknown(cat)
	return inv
}

// summary is a short description of a process for "which one?" messages: pid and first flags.
func (p Process) summary() string {
	args := p.Argv[min(p.argStart(), len(p.Argv)):]
	const max = 3
	s := strings.Join(args[:min(max, len(args))], " ")
	if len(args) > max {
		s += fmt.Sprintf(" ... (%d more)", len(args)-max)
	}
	return fmt.Sprintf("%d  %s", p.PID, s)
}
