// Package supervisor owns kubestrap's "local" run mode: a detached kubestrap process that starts
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler as its children (each through a
// symlink named after the component, so ps shows the component's own name and flags), holds the
// controller-manager and scheduler until the apiserver is healthy, restarts crashed components
// with exponential backoff, keeps their output in size-capped rotating logs, records pids and a
// status file under the run directory, and stops everything in reverse order. It also holds the client side of that
// contract: Start launches the detached supervisor, Stop ends it (and any orphan of the root),
// Status reports on it.
package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// Defaults for the tunables of Spec left at zero.
const (
	DefaultMaxBackoff   = 30 * time.Second
	DefaultStopTimeout  = 10 * time.Second
	DefaultStartTimeout = 2 * time.Minute
	DefaultLogMaxBytes  = 10 << 20
	DefaultLogMaxFiles  = 5
)

// ComponentSpec is one supervised program.
type ComponentSpec struct {
	// Name is the component's name ("etcd", "kube-apiserver", ...); it names the pid file, the log
	// and, by default, the symlink it is started through.
	Name string `json:"name"`
	// Path is the symlink to exec; empty means paths.ComponentBinary(Name). It is also argv[0], so
	// that ps, pgrep and Stop's orphan scan all see the component's own name under the bin dir.
	Path string `json:"path,omitempty"`
	// Args is argv[1:].
	Args []string `json:"args,omitempty"`
	// HealthURL (http or https) answers 200 once the component is healthy; TLS is not verified,
	// because the endpoints allow anonymous health checks and the point is liveness, not identity.
	HealthURL string `json:"healthURL,omitempty"`
	// Env is added to the supervisor's own environment ("NAME=value").
	Env []string `json:"env,omitempty"`
}

// Spec is everything the detached supervisor needs; Start persists it and `kubestrap supervise`
// reads it back.
type Spec struct {
	// Root is the root directory the spec belongs to (paths.Paths.Root()).
	Root string `json:"root"`
	// Executable is the real kubestrap binary the component symlinks point at.
	Executable string `json:"executable"`
	// Components in start order; they are stopped in reverse.
	Components []ComponentSpec `json:"components"`
	// MaxBackoff caps the delay between restarts of a crashing component.
	MaxBackoff time.Duration `json:"maxBackoff,omitempty"`
	// StopTimeout is how long a component gets between SIGTERM and SIGKILL.
	StopTimeout time.Duration `json:"stopTimeout,omitempty"`
	// StartTimeout bounds how long the start of the next component waits for a gating
	// component's health; after it the next one starts anyway (it retries on its own, and a
	// supervisor that never starts the apiserver helps nobody).
	StartTimeout time.Duration `json:"startTimeout,omitempty"`
	// LogMaxBytes is the size at which a component log is rotated; LogMaxFiles rotated logs
	// (.1 newest ... .N oldest) are kept.
	LogMaxBytes int64 `json:"logMaxBytes,omitempty"`
	LogMaxFiles int   `json:"logMaxFiles,omitempty"`
}

// gatesNext names the components the next one cannot start without: the controller-manager and
// scheduler exit when the apiserver does not answer, so they wait for it. The apiserver does not
// wait for etcd: it retries its storage connection by itself, and its own start-up work (about a
// second) then overlaps etcd's.
var gatesNext = map[string]bool{"kube-apiserver": true}

// withDefaults fills the zero tunables and component paths.
func (s Spec) withDefaults(p paths.Paths) Spec {
	if s.Root == "" {
		s.Root = p.Root()
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = DefaultMaxBackoff
	}
	if s.StopTimeout <= 0 {
		s.StopTimeout = DefaultStopTimeout
	}
	if s.StartTimeout <= 0 {
		s.StartTimeout = DefaultStartTimeout
	}
	if s.LogMaxBytes <= 0 {
		s.LogMaxBytes = DefaultLogMaxBytes
	}
	if s.LogMaxFiles < 0 {
		s.LogMaxFiles = 0
	} else if s.LogMaxFiles == 0 {
		s.LogMaxFiles = DefaultLogMaxFiles
	}
	comps := make([]ComponentSpec, len(s.Components))
	for i, c := range s.Components {
		if c.Path == "" && validName(c.Name) == nil {
			c.Path = p.ComponentBinary(c.Name)
		}
		comps[i] = c
	}
	s.Components = comps
	return s
}

// validate checks a defaulted spec against the root it is used under.
func (s Spec) validate(p paths.Paths) error {
	if filepath.Clean(s.Root) != p.Root() {
		return fmt.Errorf("supervisor spec %s belongs to root %s, not %s", specFile(p), s.Root, p.Root())
	}
	if len(s.Components) == 0 {
		return errors.New("supervisor spec has no components")
	}
	seen := map[string]bool{}
	for _, c := range s.Components {
		if err := validName(c.Name); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("component %q appears twice in the supervisor spec", c.Name)
		}
		seen[c.Name] = true
		if !filepath.IsAbs(c.Path) {
			return fmt.Errorf("component %s: path %q is not absolute", c.Name, c.Path)
		}
	}
	return nil
}

// validName keeps component names usable as file names under the run, log and bin dirs.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || name == supervisorName || strings.ContainsAny(name, `/\`+"\x00") {
		return fmt.Errorf("invalid component name %q", name)
	}
	return nil
}

// supervisorName names the supervisor's own pid file and log.
const supervisorName = "supervisor"

func specFile(p paths.Paths) string { return filepath.Join(p.StateDir(), "supervisor.json") }

// SpecPath is where WriteSpec keeps the spec; SupervisorPidFile is the supervisor's pid file.
// Reset names and removes these, so it takes them from here rather than re-spelling them.
func SpecPath(p paths.Paths) string          { return specFile(p) }
func SupervisorPidFile(p paths.Paths) string { return p.PidFile(supervisorName) }
func statusFile(p paths.Paths) string        { return filepath.Join(p.RunDir(), "status.json") }
func lockFile(p paths.Paths) string          { return filepath.Join(p.RunDir(), "supervisor.lock") }
func supervisorLog(p paths.Paths) string {
	return filepath.Join(p.LogDir(), supervisorName+".log")
}

// ErrNotStarted means no local control plane was ever started under the root.
var ErrNotStarted = errors.New("no local control plane has been started")

// WriteSpec persists spec (defaulted) as <StateDir>/supervisor.json through w, 0600: it names
// every flag of the control plane, which is nobody else's business.
func WriteSpec(w fsutil.Writer, p paths.Paths, spec Spec) error {
	spec = spec.withDefaults(p)
	if err := spec.validate(p); err != nil {
		return err
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding supervisor spec: %w", err)
	}
	return w.WriteFile(specFile(p), append(data, '\n'), 0o600)
}

// ReadSpec reads the spec WriteSpec stored; ErrNotStarted when there is none.
func ReadSpec(p paths.Paths) (Spec, error) {
	data, err := os.ReadFile(specFile(p))
	if errors.Is(err, os.ErrNotExist) {
		return Spec{}, fmt.Errorf("%w under %s (%s does not exist)", ErrNotStarted, p.Root(), specFile(p))
	}
	if err != nil {
		return Spec{}, err
	}
	var spec Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return Spec{}, fmt.Errorf("reading %s: %w", specFile(p), err)
	}
	spec = spec.withDefaults(p)
	if err := spec.validate(p); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// LinkComponents makes p.ComponentBinary(name) a symlink to exe for every name, replacing a
// symlink that points elsewhere (an older kubestrap) but never a file kubestrap did not put
// there. systemd mode can use it too: whoever starts a component through the link gets
// argv[0]-dispatch and a process named after the component.
// Each link is made through w.
func LinkComponents(w fsutil.Writer, p paths.Paths, names []string, exe string) error {
	if !filepath.IsAbs(exe) {
		return fmt.Errorf("executable %q is not an absolute path", exe)
	}
	for _, name := range names {
		if err := validName(name); err != nil {
			return err
		}
		if err := linkOne(w, p.ComponentBinary(name), exe); err != nil {
			return err
		}
	}
	return nil
}

func linkOne(w fsutil.Writer, link, exe string) error {
	fi, err := os.Lstat(link)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case fi.Mode()&os.ModeSymlink != 0:
		if target, err := os.Readlink(link); err == nil && target == exe {
			return nil
		}
	case fi.Mode().IsRegular() && sameFile(link, exe):
		// A copy or hard link of this very binary is ours; a symlink serves better.
	default:
		return fmt.Errorf("refusing to replace %s: it is not a symlink created by kubestrap; remove it or choose another --root-dir", link)
	}
	return w.Symlink(exe, link)
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
