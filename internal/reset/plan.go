package reset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/kubestrap/kubestrap/internal/join"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// Plan is what cleanup removes, in order, and what it deliberately leaves.
type Plan struct {
	// Root is the root dir with symlinks resolved; every path of the plan lies under it.
	Root string `json:"root"`
	// Unmount are mount points under the kubelet dir, deepest first.
	Unmount []string `json:"unmount,omitempty"`
	// Remove are files, symlinks and directories; every directory comes after its contents and
	// is removed only if it is empty by then.
	Remove []Removal `json:"remove,omitempty"`
	// Kept are paths that stay, with the reason.
	Kept []Kept `json:"kept,omitempty"`
}

// Removal is one path to remove.
type Removal struct {
	Path string `json:"path"`
	Dir  bool   `json:"dir,omitempty"`
	// Group is the location the path belongs to (e.g. <root>/etc/kubernetes), for summaries.
	Group string `json:"group"`
}

// Kept is a path reset leaves in place.
type Kept struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Reasons for keeping a path.
const (
	reasonForeign   = "not created by kubestrap"
	reasonNamedLike = "named like a file of kubestrap's, but not written by it"
	reasonMount     = "a mount point: kubestrap never deletes through a mount point"
)

// spec says which entries of a directory are kubestrap's (or kubeadm's, in the same layout).
type spec struct {
	// files are the known file names; their temporary siblings from an interrupted atomic write
	// (".name.tmp-*", "name.tmp-*") are ours too.
	files []string
	// owns, when set, must also accept a known file (unit files carry a marker).
	owns func(path string, fi fs.FileInfo) bool
	// dirs are the known sub-directories.
	dirs map[string]*spec
	// dirMatch gives the spec of other sub-directories by name (nil: not ours).
	dirMatch func(name string) *spec
	// all: every entry below is ours (state kubestrap, etcd or the kubelet create at will).
	all bool
	// keep: leave the directory alone for this reason, without looking inside.
	keep string
	// keepSelf: remove the contents but never the directory itself.
	keepSelf bool
	// quiet: do not report foreign entries (a shared directory such as /etc/systemd/system).
	quiet bool
}

var allSpec = &spec{all: true}

func (s *spec) sub(name string) *spec {
	if s.all {
		return allSpec
	}
	if d, ok := s.dirs[name]; ok {
		return d
	}
	if s.dirMatch != nil {
		return s.dirMatch(name)
	}
	return nil
}

// ownsFile says whether a non-directory entry is ours; named is true for a known name that
// failed the extra ownership check.
func (s *spec) ownsFile(name, path string, fi fs.FileInfo) (ours, named bool) {
	if s.all {
		return true, false
	}
	for _, f := range s.files {
		if name == f {
			if s.owns != nil && !s.owns(path, fi) {
				return false, true
			}
			return true, false
		}
		if fi.Mode().IsRegular() && (strings.HasPrefix(name, "."+f+".tmp-") || strings.HasPrefix(name, f+".tmp-")) {
			return true, false
		}
	}
	return false, false
}

// Kubeadm's file names (reference §2–§4), which kubestrap keeps.
var (
	// kubeconfigFiles are init's five kubeconfigs plus join's bootstrap-kubelet.conf.
	kubeconfigFiles = append(kubeconfigFileNames(), join.BootstrapKubeletConf)
	// pkiFiles are the certificates and keys in the certificates dir, etcd/ excluded.
	pkiFiles = withExt([]string{"ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client", "apiserver-etcd-client"}, ".crt", ".key")
	// pkiCSRs are what `certs generate-csr` writes beside them (external CA).
	pkiCSRs       = withExt([]string{"apiserver", "apiserver-kubelet-client", "front-proxy-client", "apiserver-etcd-client"}, ".csr")
	saFiles       = []string{"sa.key", "sa.pub"}
	etcdPKIFiles  = withExt([]string{"ca", "server", "peer", "healthcheck-client"}, ".crt", ".key")
	etcdPKICSRs   = withExt([]string{"server", "peer", "healthcheck-client"}, ".csr")
	manifestFiles = baseNames(func(p paths.Paths) []string {
		out := make([]string, len(runmode.ControlPlane))
		for i, c := range runmode.ControlPlane {
			out[i] = p.Manifest(c)
		}
		return out
	})
	// kubestrapConfigFiles are the apiserver files kubestrap adds to kubeadm's layout, and the
	// configuration init saves beside them.
	kubestrapConfigFiles = baseNames(func(p paths.Paths) []string {
		return []string{p.EncryptionConfig(), p.AuditPolicy(), p.SavedConfig()}
	})
)

// kubeconfigFileNames are the writer's file names of init's kubeconfigs.
func kubeconfigFileNames() []string {
	var out []string
	for _, n := range kubeconfig.KubeconfigNames() {
		f, err := kubeconfig.FileName(n)
		if err != nil {
			panic(err) // KubeconfigNames lists exactly the names FileName knows
		}
		out = append(out, f)
	}
	return out
}

// baseNames are the file names of the paths the writers' path functions give (under any root:
// the names do not depend on it).
func baseNames(pathsOf func(paths.Paths) []string) []string {
	var out []string
	for _, f := range pathsOf(paths.MustUnder("/")) {
		out = append(out, filepath.Base(f))
	}
	return out
}

// PKIFiles lists the 22 certificate and key files of a kubeadm control plane with local etcd,
// relative to the certificates dir.
func PKIFiles() []string {
	out := slices.Concat(pkiFiles, saFiles)
	for _, f := range etcdPKIFiles {
		out = append(out, "etcd/"+f)
	}
	return out
}

func withExt(bases []string, exts ...string) []string {
	var out []string
	for _, b := range bases {
		for _, e := range exts {
			out = append(out, b+e)
		}
	}
	return out
}

func pkiSpec() *spec {
	return &spec{
		files: slices.Concat(pkiFiles, pkiCSRs, saFiles),
		dirs:  map[string]*spec{"etcd": {files: slices.Concat(etcdPKIFiles, etcdPKICSRs)}},
	}
}

// planInput is everything the planner looks at besides the file system.
type planInput struct {
	p      paths.Paths
	layout *Layout
	// cleanupTmpDir removes /etc/kubernetes/tmp as well (kubeadm's --cleanup-tmp-dir).
	cleanupTmpDir bool
	// mounts is the mount table.
	mounts []string
	// unmounting are mount points that will be unmounted before the removals run (a dry run):
	// their directories are planned for removal, their contents never looked at.
	unmounting []string
}

// location is a directory tree reset cleans according to its spec.
type location struct {
	path string
	spec *spec
	// wholesale marks a tree whose entries are removed without knowing their names (state,
	// logs, etcd and kubelet data); it must not enclose anything else reset knows about, nor be
	// the root itself.
	wholesale bool
	// what names the location in messages.
	what string
}

type planner struct {
	in      planInput
	root    string // the root dir with symlinks resolved; every planned path is under it
	mounts  map[string]bool
	unmount map[string]bool
	// locs are the location roots; a walk that meets one leaves it to its own pass.
	locs    map[string]bool
	removed map[string]bool
	plan    Plan
	group   string
}

// planCleanup decides what cleanup removes under the root. It reads the file system (never
// following a symlink, never descending into a mount point) and changes nothing.
func planCleanup(in planInput) (Plan, error) {
	root, err := filepath.EvalSymlinks(in.p.Root())
	if err != nil {
		return Plan{}, fmt.Errorf("root dir %s: %w", in.p.Root(), err)
	}
	pl := &planner{in: in, root: root, mounts: map[string]bool{}, unmount: map[string]bool{}, locs: map[string]bool{}, removed: map[string]bool{}}
	for _, m := range in.mounts {
		pl.mounts[filepath.Clean(m)] = true
	}
	for _, m := range in.unmounting {
		pl.unmount[filepath.Clean(m)] = true
	}
	pl.plan.Root = root
	pl.plan.Unmount = slices.Clone(in.unmounting)

	locs := pl.locations()
	for _, l := range locs {
		pl.locs[l.path] = true
	}
	// Deepest first, so that a location inside another is settled before the outer walk asks
	// whether its directory will be empty.
	slices.SortStableFunc(locs, func(a, b location) int { return depth(b.path) - depth(a.path) })
	for _, l := range locs {
		pl.clean(l, locs)
	}
	pl.parents(locs)
	return pl.plan, nil
}

// locations lists every tree kubestrap or kubeadm writes, mapped into the resolved root.
func (pl *planner) locations() []location {
	p, real := pl.in.p, pl.in.p.IsRealRoot()
	tmp := &spec{keep: "kubeadm's scratch directory: pass --cleanup-tmp-dir to remove it"}
	if pl.in.cleanupTmpDir {
		tmp = allSpec
	}
	// On a real host the kubelet packages own /etc/kubernetes, its manifests dir and
	// /var/lib/kubelet; they stay, emptied, as kubeadm leaves them.
	k8s := &spec{
		files:    kubeconfigFiles,
		keepSelf: real,
		dirs: map[string]*spec{
			"manifests": {files: manifestFiles, keepSelf: real},
			"kubestrap": {files: kubestrapConfigFiles},
			"tmp":       tmp,
		},
	}
	var locs []location
	add := func(path string, s *spec, wholesale bool, what string) {
		path = pl.inRoot(path)
		if slices.ContainsFunc(locs, func(l location) bool { return l.path == path }) {
			return
		}
		locs = append(locs, location{path: path, spec: s, wholesale: wholesale, what: what})
	}
	add(p.KubernetesDir(), k8s, false, "Kubernetes configuration")
	for _, d := range pl.in.layout.CertDirs {
		add(d, pkiSpec(), false, "certificates")
	}
	ours := func(path string, fi fs.FileInfo) bool { return systemd.WrittenByKubestrap(path) }
	var unitFiles []string
	for _, c := range runmode.ControlPlane {
		unitFiles = append(unitFiles, systemd.UnitName(c))
	}
	unitFiles = append(unitFiles, kubeletUnit)
	units := &spec{
		files:    unitFiles,
		owns:     ours,
		quiet:    true,
		keepSelf: real,
		dirs:     map[string]*spec{kubeletDropInDir: {files: []string{kubeletDropIn}, owns: ours}},
		dirMatch: func(name string) *spec {
			if !strings.HasSuffix(name, ".wants") {
				return nil
			}
			// `systemctl enable` links units here; a link to one of our unit files is ours.
			return &spec{files: unitFiles, quiet: true, owns: func(path string, fi fs.FileInfo) bool {
				target, err := os.Readlink(path)
				return err == nil && fi.Mode()&fs.ModeSymlink != 0 && systemd.WrittenByKubestrap(filepath.Join(p.SystemdUnitDir(), filepath.Base(target)))
			}}
		},
	}
	add(p.SystemdUnitDir(), units, false, "systemd units")
	add(p.StateDir(), allSpec, true, "kubestrap state and component links")
	add(p.RunDir(), allSpec, true, "pid files and supervisor status")
	add(p.LogDir(), allSpec, true, "component, supervisor and audit logs")
	add(p.KubeletDir(), &spec{all: true, keepSelf: real}, true, "kubelet state")
	// An etcd data dir holds "member/" only; anything else in it (a wrong dataDir pointing at
	// someone's directory) is not etcd's to delete.
	for _, d := range pl.in.layout.EtcdDataDirs {
		add(d, &spec{dirs: map[string]*spec{"member": allSpec}}, true, "etcd data")
	}
	return locs
}

// inRoot maps a path under p.Root() into the resolved root.
func (pl *planner) inRoot(path string) string {
	rel, err := filepath.Rel(pl.in.p.Root(), path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return filepath.Clean(path)
	}
	return filepath.Join(pl.root, rel)
}

func (pl *planner) keep(path, reason string) {
	if !slices.ContainsFunc(pl.plan.Kept, func(k Kept) bool { return k.Path == path }) {
		pl.plan.Kept = append(pl.plan.Kept, Kept{Path: path, Reason: reason})
	}
}

func (pl *planner) remove(path string, dir bool) {
	pl.removed[path] = true
	pl.plan.Remove = append(pl.plan.Remove, Removal{Path: path, Dir: dir, Group: pl.group})
}

// clean plans one location.
func (pl *planner) clean(l location, all []location) {
	pl.group = l.path
	if !isWithin(l.path, pl.root) {
		pl.keep(l.path, "outside the root dir "+pl.root)
		return
	}
	real, err := filepath.EvalSymlinks(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		pl.keep(l.path, err.Error())
		return
	}
	if !isWithin(real, pl.root) {
		pl.keep(l.path, fmt.Sprintf("leads to %s, outside the root dir: kubestrap does not follow symlinks out of it", real))
		return
	}
	if l.wholesale {
		// A tree emptied as a whole must not be the root, nor hold another location (a
		// dataDir of "/etc" would otherwise take /etc/kubernetes with it).
		if real == pl.root {
			pl.keep(l.path, fmt.Sprintf("%s directory is the root dir itself: refusing to empty it", l.what))
			return
		}
		for _, o := range all {
			if o.path != l.path && isBelow(o.path, real) {
				pl.keep(l.path, fmt.Sprintf("%s directory contains %s: refusing to empty it", l.what, o.path))
				return
			}
		}
	}
	fi, err := os.Lstat(real)
	if err != nil {
		pl.keep(l.path, err.Error())
		return
	}
	if !fi.IsDir() {
		pl.keep(l.path, "expected a directory")
		return
	}
	if l.spec.keep != "" {
		pl.keep(real, l.spec.keep)
		return
	}
	empty := pl.visit(real, fi, l.spec)
	// A location reached through a symlink (inside the root) keeps its directory, or the link
	// would dangle; a mounted one cannot go anyway.
	if empty && !l.spec.keepSelf && real == l.path && !pl.mounts[real] {
		pl.remove(real, true)
	}
}

// visit plans the removal of what s says is ours inside dir and reports whether dir will be
// empty afterwards.
func (pl *planner) visit(dir string, dirFi fs.FileInfo, s *spec) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		pl.keep(dir, err.Error())
		return false
	}
	empty := true
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		if pl.locs[path] {
			// Settled by its own pass (deeper locations go first).
			if !pl.removed[path] {
				empty = false
			}
			continue
		}
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			pl.keep(path, err.Error())
			empty = false
			continue
		}
		if fi.IsDir() {
			if !pl.visitDir(path, name, fi, dirFi, s) {
				empty = false
			}
			continue
		}
		// Files, symlinks (removing a link never touches its target), sockets, fifos.
		ours, named := s.ownsFile(name, path, fi)
		switch {
		case ours:
			pl.remove(path, false)
		case named:
			pl.keep(path, reasonNamedLike)
			empty = false
		default:
			if !s.quiet {
				pl.keep(path, reasonForeign)
			}
			empty = false
		}
	}
	return empty
}

// visitDir plans a sub-directory and reports whether it will be gone.
func (pl *planner) visitDir(path, name string, fi, parent fs.FileInfo, s *spec) bool {
	sub := s.sub(name)
	if sub == nil {
		if !s.quiet {
			pl.keep(path, reasonForeign)
		}
		return false
	}
	if pl.unmount[path] {
		// Unmounted before the removals run; what lies under the mount is not ours to list.
		pl.remove(path, true)
		return true
	}
	if pl.isMountPoint(path, fi, parent) {
		pl.keep(path, reasonMount)
		return false
	}
	if sub.keep != "" {
		pl.keep(path, sub.keep)
		return false
	}
	if !pl.visit(path, fi, sub) || sub.keepSelf {
		return false
	}
	pl.remove(path, true)
	return true
}

// isMountPoint consults the mount table, and the device numbers for a mount the table does not
// show (another namespace's view, a table read before the mount appeared).
func (pl *planner) isMountPoint(path string, fi, parent fs.FileInfo) bool {
	if pl.mounts[path] {
		return true
	}
	a, ok1 := fi.Sys().(*syscall.Stat_t)
	b, ok2 := parent.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && a.Dev != b.Dev
}

// parents plans the removal of the directories init created above the locations (<root>/etc,
// <root>/var/lib, ...) once they are empty — only under a root dir other than "/", whose
// system directories are never kubestrap's.
func (pl *planner) parents(locs []location) {
	if pl.in.p.IsRealRoot() {
		return
	}
	pl.group = ""
	var dirs []string
	for _, l := range locs {
		for d := filepath.Dir(l.path); isBelow(d, pl.root); d = filepath.Dir(d) {
			dirs = appendNew(dirs, d)
		}
	}
	slices.SortStableFunc(dirs, func(a, b string) int { return depth(b) - depth(a) })
	for _, d := range dirs {
		if pl.removed[d] || pl.locs[d] {
			continue
		}
		fi, err := os.Lstat(d)
		if err != nil || !fi.IsDir() || pl.mounts[d] {
			continue
		}
		if pl.willBeEmpty(d) {
			pl.remove(d, true)
		}
	}
}

func (pl *planner) willBeEmpty(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !pl.removed[filepath.Join(dir, e.Name())] {
			return false
		}
	}
	return true
}

func depth(path string) int { return strings.Count(path, "/") }

// execute removes the plan's paths in order. Only single removals are used — never a recursive
// delete — so a directory that gained an entry since planning, or turned into a mount point,
// stays (and is reported) rather than being emptied on the strength of an outdated plan. The
// removals go through an os.Root, so that even a directory swapped for a symlink while reset runs
// cannot lead them out of the root dir.
func (pl *Plan) execute() (removed []Removal, kept []Kept, err error) {
	if len(pl.Remove) == 0 {
		return nil, nil, nil
	}
	root, err := os.OpenRoot(pl.Root)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	var errs []error
	for _, r := range pl.Remove {
		rel, err := filepath.Rel(pl.Root, r.Path)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			kept = append(kept, Kept{Path: r.Path, Reason: "outside the root dir " + pl.Root})
			continue
		}
		e := root.Remove(rel)
		switch {
		case e == nil:
			removed = append(removed, r)
		case errors.Is(e, fs.ErrNotExist):
		case r.Dir && (errors.Is(e, syscall.ENOTEMPTY) || errors.Is(e, syscall.EEXIST)):
			kept = append(kept, Kept{Path: r.Path, Reason: "not empty: something was added while reset ran"})
		case errors.Is(e, syscall.EBUSY):
			kept = append(kept, Kept{Path: r.Path, Reason: reasonMount})
		default:
			errs = append(errs, e)
		}
	}
	return removed, kept, errors.Join(errs...)
}
