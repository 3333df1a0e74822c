// Package reset owns undoing init and join on a host: it finds what a previous run left under the
// root dir (run modes, component flags, certificate and data directories), confirms with the
// operator, takes this node's etcd member out of a multi-member cluster, stops every process of
// the root (local supervisor, systemd units, static pods and the kubelet, stragglers), unmounts
// what is mounted under the kubelet dir, and removes exactly the files and directories kubestrap
// (or kubeadm, in the same layout) creates — never a file it did not write, never through a mount
// point, never along a symlink out of the root. It reports what it keeps and what it leaves by
// design, and it is safe to run again.
package reset

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/kubestrap/kubestrap/internal/etcdcluster"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/logx"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/preflight"
	"github.com/kubestrap/kubestrap/internal/procfs"
	"github.com/kubestrap/kubestrap/internal/supervisor"
	"github.com/kubestrap/kubestrap/internal/systemd"
)

// Options are one reset run's settings.
type Options struct {
	Paths paths.Paths
	// CertificatesDir and EtcdDataDir are configured host paths ("" for none); the directories
	// the components actually use are found on disk and cleaned as well.
	CertificatesDir string
	EtcdDataDir     string
	// CleanupTmpDir also removes /etc/kubernetes/tmp.
	CleanupTmpDir bool
	// DryRun changes nothing and lists what would be stopped and removed.
	DryRun bool
	// Force skips the confirmation prompt (kubeadm's meaning, and nothing more: scripts pass it
	// always, so it must not also override the etcd quorum guard).
	Force bool
	// IgnorePreflightErrors names checks whose failures become warnings: KubeletMounts, and
	// EtcdQuorumCheck, the guard against removing this node's etcd member when the members left
	// would have no healthy quorum; "all" for both.
	IgnorePreflightErrors []string
	// UnmountFlags are umount2 flag names (ResetConfiguration.unmountFlags).
	UnmountFlags []string
	// CRISocket is the container runtime's endpoint (kubeadm's --cri-socket); "" means, on a real
	// root, the one the kubelet was set up with or else the one runtime found (chooseCRIEndpoint),
	// and none under another root dir.
	CRISocket string
	// StopTimeout bounds the orderly stop of the local control plane before stragglers get
	// SIGKILL (0: the supervisor's own default).
	StopTimeout time.Duration
	In          io.Reader
	Out         io.Writer // the closing notice
	// Log takes the progress lines; when it is a logx.Logger, -v 1 adds each path removed,
	// unmounted or linked and each wait (processes, pods, units, etcd), -v 2 each etcd call.
	Log io.Writer
}

// System is reset's boundary with the host; zero fields are the real system.
type System struct {
	Mounts  MountTable
	Unmount func(path string, flags int) error
	Procs   Processes
	Kill    func(pid int, sig syscall.Signal) error
	// Self is this process (default os.Getpid()); it and its ancestors are never stopped.
	Self int
	// UID is the effective user id; unmounting is attempted only as root (0, the zero value).
	UID int
	// StopLocal stops the root's local supervisor and its components (supervisor.Host.Stop,
	// reporting on the run's log).
	StopLocal func(p paths.Paths, timeout time.Duration) (bool, error)
	// Manageable says whether systemd can be driven for the root's units (systemd.Manageable).
	Manageable func(p paths.Paths) (bool, string)
	// Systemd connects to systemd (systemd.NewManager).
	Systemd func(ctx context.Context) (Systemd, error)
	// CRI connects to the container runtime (DialCRI).
	CRI      func(ctx context.Context, endpoint string) (PodRuntime, error)
	DialEtcd DialEtcd
	// EtcdEndpoints lists the other control-plane nodes' etcd client URLs through the API, for a
	// node whose own etcd is down (default: through admin.conf under the root).
	EtcdEndpoints EtcdEndpoints
	// ProbeTimeout bounds the TCP probe of the local etcd.
	ProbeTimeout time.Duration
	IsTerminal   func(io.Reader) bool
	// Poll is the interval of every wait; KillWait how long processes get after SIGTERM before
	// SIGKILL, and after SIGKILL before reset gives up; PodWait how long the kubelet gets to
	// stop the static pods.
	Poll     time.Duration
	KillWait time.Duration
	PodWait  time.Duration
}

// Systemd is the part of systemd's D-Bus API reset needs (systemd.Manager has it).
type Systemd interface {
	Reload(ctx context.Context) error
	StopAndDisable(ctx context.Context, units []string) error
	Close()
}

func (s System) withDefaults() System {
	if s.Mounts == nil {
		s.Mounts = ProcMounts{}
	}
	if s.Unmount == nil {
		s.Unmount = realUnmount
	}
	if s.Procs == nil {
		s.Procs = procfs.FS{}
	}
	if s.Kill == nil {
		s.Kill = syscall.Kill
	}
	if s.Self == 0 {
		s.Self = os.Getpid()
	}
	if s.StopLocal == nil {
		s.StopLocal = supervisor.Stop
	}
	if s.Manageable == nil {
		s.Manageable = systemd.Manageable
	}
	if s.Systemd == nil {
		s.Systemd = func(ctx context.Context) (Systemd, error) { return systemd.NewManager(ctx) }
	}
	if s.DialEtcd == nil {
		s.DialEtcd = etcdcluster.Dial
	}
	if s.CRI == nil {
		s.CRI = DialCRI
	}
	if s.IsTerminal == nil {
		s.IsTerminal = func(r io.Reader) bool {
			f, ok := r.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		}
	}
	if s.Poll <= 0 {
		s.Poll = 50 * time.Millisecond
	}
	if s.KillWait <= 0 {
		s.KillWait = 5 * time.Second
	}
	if s.PodWait <= 0 {
		// The kubelet gives a static pod its 30 s grace period, plus time to notice the
		// manifest is gone.
		s.PodWait = 45 * time.Second
	}
	return s
}

// Reset is one run: the layout found at the start, and what was done so far.
type Reset struct {
	o      Options
	sys    System
	p      paths.Paths
	log    io.Writer
	layout *Layout

	// changes counts what was (or, in a dry run, would be) done; none means "nothing to do".
	changes int
	// kept are the paths cleanup left in place, with the reason.
	kept []Kept
	// hadKubelet notes a kubelet or static pods, whose containers reset cannot see.
	hadKubelet bool
	// cri is the container runtime endpoint, chosen once (criEndpoint).
	cri struct {
		once     sync.Once
		endpoint string
	}
}

// New reads the root's layout and prepares a run.
func New(o Options, sys System) (*Reset, error) {
	if o.Paths.Root() == "" {
		return nil, errors.New("reset: no root dir")
	}
	if _, err := unmountFlags(o.UnmountFlags); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if sys.StopLocal == nil {
		sys.StopLocal = supervisor.Host{Log: o.Log}.Stop
	}
	r := &Reset{o: o, sys: sys.withDefaults(), p: o.Paths, log: o.Log}
	if r.sys.EtcdEndpoints == nil {
		r.sys.EtcdEndpoints = r.endpointsFromAPI
	}
	r.layout = Discover(o.Paths, o.CertificatesDir, o.EtcdDataDir)
	for _, w := range r.layout.Warnings {
		fmt.Fprintf(r.log, "[reset] WARNING: %s\n", w)
	}
	r.hadKubelet = len(r.layout.contained()) > 0 || r.layout.KubeletUnit
	if o.DryRun {
		fmt.Fprintf(r.log, "[dryrun] Nothing will be stopped or removed under %s\n", r.p.Root())
	}
	return r, nil
}

// Layout is what New found under the root.
func (r *Reset) Layout() *Layout { return r.layout }

// Preflight asks for confirmation (unless forced or dry) and runs reset's checks.
func (r *Reset) Preflight(ctx context.Context) error {
	fmt.Fprintln(r.log, "[preflight] Running pre-flight checks")
	if !r.o.Force && !r.o.DryRun {
		if err := r.confirm(); err != nil {
			return err
		}
	}
	res, err := preflight.Run([]preflight.Check{r.kubeletMountsCheck()}, r.o.IgnorePreflightErrors)
	for _, w := range res.Warnings {
		fmt.Fprintf(r.log, "[preflight] WARNING %s\n", w)
	}
	return err
}

func (r *Reset) confirm() error {
	if !r.sys.IsTerminal(r.o.In) {
		return fmt.Errorf("refusing to reset %s without confirmation: standard input is not a terminal; pass --force to reset without the prompt", r.p.Root())
	}
	fmt.Fprintf(r.log, "[reset] WARNING: Changes made to this host by 'kubestrap init' or 'kubestrap join' under %s will be reverted.\n", r.p.Root())
	fmt.Fprint(r.log, "[reset] Are you sure you want to proceed? [y/N]: ")
	line, err := bufio.NewReader(r.o.In).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("reset aborted: no answer (%v)", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("reset aborted: not confirmed")
}

// kubeletMountsCheck fails when something is mounted under the kubelet dir and reset cannot
// unmount it; ignored, those mount points are kept (never deleted through).
func (r *Reset) kubeletMountsCheck() preflight.Check {
	return preflight.Check{Name: "KubeletMounts", Run: func() error {
		if r.sys.UID == 0 {
			return nil
		}
		mounts, err := r.sys.Mounts.MountPoints()
		if err != nil {
			return err
		}
		under := mountsUnder(mounts, realPath(r.p.KubeletDir()))
		if len(under) == 0 {
			return nil
		}
		return fmt.Errorf("%d mount point(s) under %s (first: %s) can only be unmounted by root; run reset as root, or ignore this check to keep them and everything below them", len(under), r.p.KubeletDir(), under[len(under)-1])
	}}
}

// realPath resolves symlinks where it can; the mount table speaks in resolved paths.
func realPath(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// Cleanup unmounts what is mounted under the kubelet dir and removes kubestrap's files and
// directories (see planCleanup for the rules).
func (r *Reset) Cleanup(ctx context.Context) error {
	mounts, err := r.sys.Mounts.MountPoints()
	if err != nil {
		// Without the mount table, deleting could reach into a mounted volume.
		return fmt.Errorf("%w: refusing to delete anything without it", err)
	}
	flags, _ := unmountFlags(r.o.UnmountFlags)
	under := mountsUnder(mounts, realPath(r.p.KubeletDir()))
	var errs []error
	in := planInput{p: r.p, layout: r.layout, cleanupTmpDir: r.o.CleanupTmpDir}
	if r.o.DryRun {
		for _, m := range under {
			fmt.Fprintf(r.log, "[dryrun] Would unmount %s\n", m)
		}
		in.unmounting = under
		r.changes += len(under)
	} else if len(under) > 0 && r.sys.UID == 0 {
		fmt.Fprintf(r.log, "[reset] Unmounting mounted directories in %s\n", r.p.KubeletDir())
		for _, m := range under {
			done := logx.Wait(r.log, "the unmount of %s", m)
			err := r.sys.Unmount(m, flags)
			done(err)
			if err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w (unmount it by hand and run reset again; nothing below it was deleted)", m, err))
				continue
			}
			r.changes++
		}
		if mounts, err = r.sys.Mounts.MountPoints(); err != nil {
			return fmt.Errorf("%w: refusing to delete anything without it", err)
		}
	} else if len(under) > 0 {
		fmt.Fprintf(r.log, "[reset] Not unmounting %d mount point(s) under %s: that needs root; they and everything below them are kept\n", len(under), r.p.KubeletDir())
	}
	in.mounts = mounts

	plan, err := planCleanup(in)
	if err != nil {
		return err
	}
	if len(plan.Remove) == 0 && len(under) == 0 {
		fmt.Fprintf(r.log, "[reset] No file or directory of kubestrap's is left under %s\n", r.p.Root())
	}
	if r.o.DryRun {
		for _, rm := range plan.Remove {
			if rm.Dir {
				fmt.Fprintf(r.log, "[dryrun] Would remove directory %s\n", rm.Path)
			} else {
				fmt.Fprintf(r.log, "[dryrun] Would remove %s\n", rm.Path)
			}
		}
		r.changes += len(plan.Remove)
		r.reportKept(plan.Kept)
		return errors.Join(errs...)
	}

	removed, kept, err := plan.execute()
	if err != nil {
		errs = append(errs, err)
	}
	r.changes += len(removed)
	r.reportRemoved(removed)
	if slices.ContainsFunc(removed, func(rm Removal) bool { return strings.HasPrefix(rm.Path, realPath(r.p.SystemdUnitDir())+"/") }) {
		r.reloadSystemd(ctx)
	}
	r.reportKept(append(plan.Kept, kept...))
	return errors.Join(errs...)
}

// reportRemoved prints one line per location, and at -v 1 each path removed before.
func (r *Reset) reportRemoved(removed []Removal) {
	var groups []string
	count := map[string]int{}
	for _, rm := range removed {
		logx.FileRemoved(r.log, rm.Path)
		if count[rm.Group] == 0 {
			groups = append(groups, rm.Group)
		}
		count[rm.Group]++
	}
	for _, g := range groups {
		if g == "" {
			fmt.Fprintf(r.log, "[reset] Deleted %d empty parent director%s\n", count[g], plural(count[g], "y", "ies"))
			continue
		}
		fmt.Fprintf(r.log, "[reset] Deleted %d entr%s in %s\n", count[g], plural(count[g], "y", "ies"), g)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (r *Reset) reportKept(kept []Kept) {
	for _, k := range kept {
		if !slices.ContainsFunc(r.kept, func(o Kept) bool { return o.Path == k.Path }) {
			r.kept = append(r.kept, k)
			fmt.Fprintf(r.log, "[reset] Kept %s: %s\n", k.Path, k.Reason)
		}
	}
}

// reloadSystemd makes systemd forget the removed units.
func (r *Reset) reloadSystemd(ctx context.Context) {
	if ok, _ := r.sys.Manageable(r.p); !ok {
		return
	}
	m, err := r.sys.Systemd(ctx)
	if err == nil {
		defer m.Close()
		err = m.Reload(ctx)
	}
	if err != nil {
		fmt.Fprintf(r.log, "[reset] WARNING: systemd daemon-reload: %v; run 'systemctl daemon-reload'\n", err)
		return
	}
	fmt.Fprintln(r.log, "[reset] Reloaded systemd (daemon-reload)")
}

// Kept lists what cleanup left in place and why.
func (r *Reset) Kept() []Kept { return slices.Clone(r.kept) }

// Changed reports whether the run did (or, dry, would do) anything.
func (r *Reset) Changed() bool { return r.changes > 0 }

// Finish prints the outcome: "nothing to do", or what reset leaves by design and how to clean it.
func (r *Reset) Finish() {
	if r.changes == 0 {
		msg := fmt.Sprintf("[reset] Nothing to do: no process, file or directory of kubestrap's is left under %s", r.p.Root())
		if n := len(r.kept); n > 0 {
			msg += fmt.Sprintf(" (%d path%s kubestrap did not create kept, listed above)", n, plural(n, "", "s"))
		}
		fmt.Fprintln(r.log, msg)
		return
	}
	if r.o.DryRun {
		fmt.Fprintf(r.log, "[dryrun] Nothing was changed under %s\n", r.p.Root())
		return
	}
	fmt.Fprint(r.o.Out, r.notice())
}

// notice is what kubeadm's reset prints at the end, made concrete: what is left by design, and
// the commands that clean it.
func (r *Reset) notice() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nkubestrap reset removed this node's control plane and node files under %s.\n", r.p.Root())
	b.WriteString("By design it does not clean up the following; do it yourself if you need to:\n\n")
	cni := r.p.Host("/etc/cni/net.d")
	fmt.Fprintf(&b, "  - CNI configuration, written by the network plugin:\n      rm -rf %s\n", cni)
	b.WriteString("  - iptables, nftables or IPVS rules set by kube-proxy or the network plugin (these commands\n" +
		"    flush every rule of the host, not only Kubernetes'):\n" +
		"      iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X\n" +
		"      ip6tables -F && ip6tables -t nat -F && ip6tables -t mangle -F && ip6tables -X\n" +
		"      nft delete table ip kube-proxy; nft delete table ip6 kube-proxy\n" +
		"      ipvsadm --clear\n")
	admin, _ := kubeconfig.FileName(kubeconfig.Admin) // a name FileName knows
	fmt.Fprintf(&b, "  - copies of %s, e.g. in $HOME/.kube/config:\n      rm $HOME/.kube/config\n", r.p.Kubeconfig(admin))
	if r.hadKubelet {
		b.WriteString("  - containers the kubelet started for other pods, if it was stopped before them:\n      crictl rmp --all --force\n")
	}
	return b.String()
}
