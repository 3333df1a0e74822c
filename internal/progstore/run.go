package progstore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/kubestrap/kubestrap/internal/paths"
)

// Manifest describes an embedded component program; the release build writes it next to the
// program (hack/build.sh) and the front reads it instead of linking the components.
type Manifest struct {
	// SHA256 of the program, hex: its directory in the store.
	SHA256 string `json:"sha256"`
	// Kubernetes and Etcd are the bundled components' versions, from the program's build info.
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd"`
	// Components are the names the program dispatches on (argv[0] or the first argument).
	Components []string `json:"components"`
}

// ForRoot returns the program local mode starts components with, for the root whose bin dir is
// binDir: the running monolith itself, or the embedded program installed in binDir, owned by the
// caller (and, for root, below directories only root can write).
func ForRoot(binDir string, log io.Writer) (string, error) {
	if embedded == nil {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find the kubestrap executable: %w", err)
		}
		return exe, nil
	}
	uid := os.Geteuid()
	prog, err := Install(binDir, embedded.source(), Options{UID: uint32(uid), Chain: uid == 0, Log: log, Prefix: "[control-plane]"})
	if err != nil && uid == 0 {
		return "", fmt.Errorf("%w; the supervisor runs the control plane as root from this copy, so it and every directory above it must be owned by root and writable by nobody else: use a --root-dir whose parent directories only root can write", err)
	}
	return prog, err
}

// Component returns the component argv asks for: argv[0]'s base name (a symlink named after it)
// or the first argument ("kubestrap kube-apiserver ..."), if it is one of names; "" otherwise.
func Component(argv []string, names []string) (name string, viaArgv0 bool) {
	switch {
	case len(argv) > 0 && slices.Contains(names, filepath.Base(argv[0])):
		return filepath.Base(argv[0]), true
	case len(argv) > 1 && slices.Contains(names, argv[1]):
		return argv[1], false
	}
	return "", false
}

// DispatchDir is the store a front program extracts to when it runs a component directly
// ("kubestrap etcd ..."): the bin dir of KUBESTRAP_ROOT_DIR (default /) for root or when that
// variable names another root; an ordinary user's cache directory otherwise, since /var/lib is
// root's.
func DispatchDir(getenv func(string) string, euid int) (string, error) {
	root := getenv("KUBESTRAP_ROOT_DIR")
	if euid == 0 || (root != "" && root != "/") {
		p, err := paths.New(root, euid)
		if err != nil {
			return "", err
		}
		return p.BinDir(), nil
	}
	cache := getenv("XDG_CACHE_HOME")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			return "", fmt.Errorf("neither XDG_CACHE_HOME nor HOME is set: set one, or KUBESTRAP_ROOT_DIR, to say where the component program is extracted")
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "kubestrap", "bin"), nil
}

// ExecComponent replaces the running front program with the embedded component program,
// installed (or verified) in dir, with argv unchanged: "kubestrap kube-apiserver --flags" keeps
// its command line in ps, and a call through a symlink named after the component is re-executed
// through the store's link of the same name, so /proc/PID/comm still shows the component. It
// returns only on failure.
func ExecComponent(dir string, argv []string, name string, viaArgv0 bool) error {
	if embedded == nil {
		return fmt.Errorf("this kubestrap does not carry an embedded component program")
	}
	uid := os.Geteuid()
	prog, err := Install(dir, embedded.source(), Options{UID: uint32(uid), Chain: uid == 0})
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	path := prog
	if viaArgv0 {
		path = filepath.Join(filepath.Dir(prog), name)
	}
	return fmt.Errorf("run %s from %s: %w", name, path, syscall.Exec(path, argv, os.Environ()))
}
