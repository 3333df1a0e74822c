package reset

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/kubeconfig"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/pki"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// TestCleanupRemovesOnlyOurs: after init and join, cleanup removes every file of kubestrap's
// layout, keeps (and reports) what it did not write, and removes a directory only once empty.
func TestCleanupRemovesOnlyOurs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.populateInit()
	// Leftovers of an atomic write interrupted by kill -9.
	e.write("etc/kubernetes/pki/.ca.key.tmp-123456", "half a key")
	e.write("var/lib/kubestrap/bin/etcd.tmp-77", "")
	// The configuration init saves, and the staged files of a renewal interrupted by a crash.
	e.write(strings.TrimPrefix(paths.SavedConfigFile, "/"), "apiVersion: kubeadm.k8s.io/v1beta4\n")
	e.write("etc/kubernetes/pki/apiserver.crt.tmp-renew", "pem")
	e.write("etc/kubernetes/pki/etcd/server.key.tmp-renew", "pem")
	foreign := []string{
		"etc/kubernetes/notes.txt",
		"etc/kubernetes/pki/my-own.crt",
		"etc/kubernetes/manifests/custom-pod.yaml",
		"etc/kubernetes/kubestrap/authn-config.yaml",
		"etc/systemd/system/kubelet.service.d/20-local.conf",
		"var/lib/etcd/README",
	}
	for _, f := range foreign {
		e.write(f, "the operator's")
	}
	// A unit of the same name as ours that kubestrap did not write, and an unrelated one.
	e.write("etc/systemd/system/etcd.service", "[Service]\nExecStart=/usr/bin/etcd\n")
	e.write("etc/systemd/system/other.service", "[Service]\nExecStart=/bin/true\n")

	r := e.newReset(Options{Force: true})
	if err := runAll(t, r); err != nil {
		t.Fatalf("reset: %v\n%s", err, e.log.String())
	}

	var want []string
	for _, f := range append(slices.Clone(foreign), "etc/systemd/system/etcd.service", "etc/systemd/system/other.service") {
		for d := f; d != "."; d = filepath.Dir(d) {
			if !slices.Contains(want, d) {
				want = append(want, d)
			}
		}
	}
	sort.Strings(want)
	if got := relPaths(t, e.root); !slices.Equal(got, want) {
		t.Errorf("left under the root:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	wantKept := []string{e.path("etc/systemd/system/etcd.service")}
	for _, f := range foreign {
		wantKept = append(wantKept, e.path(f))
	}
	sort.Strings(wantKept)
	if got := keptPaths(r); !slices.Equal(got, wantKept) {
		t.Errorf("reported as kept:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantKept, "\n  "))
	}
	for _, f := range foreign {
		if !strings.Contains(e.log.String(), "Kept "+e.path(f)+": not created by kubestrap") {
			t.Errorf("log does not report %s as kept:\n%s", f, e.log.String())
		}
	}
	if !strings.Contains(e.log.String(), "etcd.service: "+reasonNamedLike) {
		t.Errorf("a foreign unit named like ours is not reported:\n%s", e.log.String())
	}
	if strings.Contains(e.log.String(), "other.service") {
		t.Errorf("an unrelated unit in the shared unit dir is reported:\n%s", e.log.String())
	}
	if !strings.Contains(e.out.String(), "rm -rf "+e.path("etc/cni/net.d")) || !strings.Contains(e.out.String(), "$HOME/.kube/config") || !strings.Contains(e.out.String(), "iptables") {
		t.Errorf("closing notice lacks what is left by design:\n%s", e.out.String())
	}
}

// TestCleanupDoesNotFollowSymlinksOutOfRoot: links inside kubestrap's directories are removed as
// links; a kubestrap directory that is itself a link out of the root is not entered.
func TestCleanupDoesNotFollowSymlinksOutOfRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.populateInit()
	outside := t.TempDir()
	for _, f := range []string{"precious.txt", "dir/inner.txt", "k8s/admin.conf", "k8s/pki/ca.key", "etcd/member/snap/db"} {
		path := filepath.Join(outside, f)
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, []byte("keep me"), 0o600)
	}
	before := tree(t, outside)

	e.symlink(filepath.Join(outside, "dir"), "var/lib/kubelet/pods/uid-1/volumes/link")
	e.symlink(filepath.Join(outside, "precious.txt"), "var/log/kubestrap/latest.log")
	os.Remove(e.path("var/lib/kubestrap/bin/kube-apiserver"))
	e.symlink(filepath.Join(outside, "precious.txt"), "var/lib/kubestrap/bin/kube-apiserver")
	// A whole kubestrap directory moved out of the root behind a link.
	os.RemoveAll(e.path("var/lib/etcd"))
	e.symlink(filepath.Join(outside, "etcd"), "var/lib/etcd")
	os.RemoveAll(e.path("etc/kubernetes"))
	e.symlink(filepath.Join(outside, "k8s"), "etc/kubernetes")

	r := e.newReset(Options{Force: true})
	if err := runAll(t, r); err != nil {
		t.Fatalf("reset: %v\n%s", err, e.log.String())
	}
	if after := tree(t, outside); !slices.Equal(before, after) {
		t.Errorf("files outside the root changed:\nbefore %v\nafter  %v", before, after)
	}
	for _, rel := range []string{"var/lib/kubelet", "var/log/kubestrap", "var/lib/kubestrap"} {
		if _, err := os.Lstat(e.path(rel)); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v): the links in it should have been removed as links", rel, err)
		}
	}
	for _, rel := range []string{"etc/kubernetes", "var/lib/etcd"} {
		if fi, err := os.Lstat(e.path(rel)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: want the link kept, got %v", rel, err)
		}
		if !slices.Contains(keptPaths(r), e.path(rel)) || !strings.Contains(e.log.String(), "outside the root dir") {
			t.Errorf("%s not reported as a link out of the root:\n%s", rel, e.log.String())
		}
	}
}

// TestCleanupNeverDeletesThroughMounts: what is mounted under the kubelet dir is unmounted first;
// a mount that stays (unmount failed, or outside the kubelet dir) is never entered.
func TestCleanupNeverDeletesThroughMounts(t *testing.T) {
	t.Parallel()
	vol := "var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~nfs/pv-data"
	audit := "var/log/kubestrap/audit"
	setup := func(t *testing.T) *env {
		e := newEnv(t)
		e.populateInit()
		e.write(vol+"/database.db", "a persistent volume's data")
		e.mounts.points = []string{"/", "/proc", e.path(vol), e.path(audit)}
		return e
	}

	t.Run("unmount fails", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		e.mounts.fail = syscall.EBUSY
		r := e.newReset(Options{Force: true})
		err := runAll(t, r)
		if err == nil || !strings.Contains(err.Error(), "unmount "+e.path(vol)) {
			t.Fatalf("want an unmount error, got %v", err)
		}
		for _, rel := range []string{vol + "/database.db", audit + "/kube-apiserver-audit.log"} {
			if _, err := os.Stat(e.path(rel)); err != nil {
				t.Errorf("%s was deleted through a mount point: %v", rel, err)
			}
		}
		if !slices.Contains(keptPaths(r), e.path(vol)) || !strings.Contains(e.log.String(), reasonMount) {
			t.Errorf("mount point not reported as kept:\n%s", e.log.String())
		}
		// Everything else is gone all the same.
		if _, err := os.Stat(e.path("etc/kubernetes/pki/ca.key")); !os.IsNotExist(err) {
			t.Errorf("ca.key: %v", err)
		}
	})

	t.Run("unmounted first", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		// After a real unmount the directory is the empty mount point.
		os.Remove(e.path(vol + "/database.db"))
		r := e.newReset(Options{Force: true})
		if err := runAll(t, r); err != nil {
			t.Fatalf("reset: %v\n%s", err, e.log.String())
		}
		if !slices.Equal(e.mounts.unmounted, []string{e.path(vol)}) {
			t.Errorf("unmounted %v, want only %s (the audit mount is not under the kubelet dir)", e.mounts.unmounted, vol)
		}
		if _, err := os.Lstat(e.path("var/lib/kubelet")); !os.IsNotExist(err) {
			t.Errorf("kubelet dir: %v", err)
		}
		if _, err := os.Stat(e.path(audit + "/kube-apiserver-audit.log")); err != nil {
			t.Errorf("deleted through the audit mount: %v", err)
		}
	})

	t.Run("not root", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		e.sys.UID = 1000
		r := e.newReset(Options{Force: true})
		err := runAll(t, r)
		if err == nil || !strings.Contains(err.Error(), "KubeletMounts") {
			t.Fatalf("want the KubeletMounts pre-flight error, got %v", err)
		}
		r = e.newReset(Options{Force: true, IgnorePreflightErrors: []string{"KubeletMounts"}})
		if err := runAll(t, r); err != nil {
			t.Fatalf("reset ignoring KubeletMounts: %v", err)
		}
		if len(e.mounts.unmounted) != 0 {
			t.Errorf("unmounted %v without root", e.mounts.unmounted)
		}
		if _, err := os.Stat(e.path(vol + "/database.db")); err != nil {
			t.Errorf("deleted through a mount point: %v", err)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		before := tree(t, e.root)
		r := e.newReset(Options{DryRun: true})
		if err := runAll(t, r); err != nil {
			t.Fatal(err)
		}
		if after := tree(t, e.root); !slices.Equal(before, after) || len(e.mounts.unmounted) != 0 {
			t.Errorf("dry run changed the root or unmounted %v", e.mounts.unmounted)
		}
		log := e.log.String()
		if !strings.Contains(log, "[dryrun] Would unmount "+e.path(vol)) || !strings.Contains(log, "Would remove directory "+e.path(vol)) {
			t.Errorf("dry run does not announce the unmount:\n%s", log)
		}
		if strings.Contains(log, "database.db") {
			t.Errorf("dry run lists a file under a mount point:\n%s", log)
		}
	})
}

// TestDryRunChangesNothing: a dry run lists every process and path and changes nothing.
func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.populateInit()
	e.runningLocal()
	before := tree(t, e.root)
	r := e.newReset(Options{DryRun: true})
	if err := runAll(t, r); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, e.root); !slices.Equal(before, after) {
		t.Errorf("the dry run changed the root:\nbefore %v\nafter  %v", before, after)
	}
	if len(e.procs.signals) != 0 || e.localStops != 0 {
		t.Errorf("the dry run signalled %v and stopped the supervisor %d times", e.procs.signals, e.localStops)
	}
	log := e.log.String()
	for _, pid := range []string{"4242", "4243", "4244", "4245", "4246"} {
		if !strings.Contains(log, "[dryrun] Would stop process "+pid+" ") {
			t.Errorf("process %s not listed:\n%s", pid, log)
		}
	}
	for _, rel := range slices.Concat(PKIFiles(), []string{"../admin.conf", "../../../var/lib/etcd/member/snap/db", "../../../var/lib/kubelet/pki/kubelet-client-current.pem", "../../../etc/systemd/system/kubelet.service"}) {
		path := filepath.Join(e.root, "etc/kubernetes/pki", rel)
		if !strings.Contains(log, "[dryrun] Would remove "+path+"\n") {
			t.Errorf("%s not listed:\n%s", path, log)
		}
	}
	if !strings.Contains(log, "[dryrun] Nothing was changed") {
		t.Errorf("no closing dry-run line:\n%s", log)
	}
}

// TestIdempotent: a second reset, or one on a clean node, finds nothing to do.
func TestIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.populateInit()
	e.runningLocal()
	e.write("etc/kubernetes/notes.txt", "mine")
	if err := runAll(t, e.newReset(Options{Force: true})); err != nil {
		t.Fatal(err)
	}
	if left := e.procs.alivePids(); !slices.Equal(left, []int{shellPID, selfPID}) {
		t.Errorf("processes left: %v", left)
	}
	e.log.Reset()
	e.out.Reset()
	r := e.newReset(Options{Force: true})
	if err := runAll(t, r); err != nil {
		t.Fatal(err)
	}
	if r.Changed() || !strings.Contains(e.log.String(), "Nothing to do") || e.out.Len() != 0 {
		t.Errorf("second reset: changed=%v\n%s%s", r.Changed(), e.log.String(), e.out.String())
	}

	clean := newEnv(t)
	r = clean.newReset(Options{Force: true})
	if err := runAll(t, r); err != nil {
		t.Fatal(err)
	}
	if r.Changed() || !strings.Contains(clean.log.String(), "Nothing to do") {
		t.Errorf("reset of a clean root: %s", clean.log.String())
	}
	if got := relPaths(t, clean.root); len(got) != 0 {
		t.Errorf("reset of a clean root created %v", got)
	}
}

// TestHalfFinishedInit: an init killed early leaves some certificates, a temporary key and an
// empty etcd data dir, and no supervisor state.
func TestHalfFinishedInit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("etc/kubernetes/pki/ca.crt", "pem")
	e.write("etc/kubernetes/pki/ca.key", "pem")
	e.write("etc/kubernetes/pki/.apiserver.key.tmp-99", "")
	os.MkdirAll(e.path("var/lib/etcd"), 0o700)
	r := e.newReset(Options{Force: true})
	if err := runAll(t, r); err != nil {
		t.Fatal(err)
	}
	if got := relPaths(t, e.root); len(got) != 0 {
		t.Errorf("left: %v", got)
	}
}

// TestPlanRefusesDangerousDataDirs: a dataDir that is the root, or holds other kubestrap
// directories, is never emptied.
func TestPlanRefusesDangerousDataDirs(t *testing.T) {
	t.Parallel()
	for _, dataDir := range []string{"/", "/etc", "/var"} {
		t.Run(dataDir, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.populateInit()
			e.write("etc/hostname", "node1")
			e.write("var/mail/root", "mail")
			r := e.newReset(Options{Force: true, EtcdDataDir: dataDir})
			if err := runAll(t, r); err != nil {
				t.Fatal(err)
			}
			for _, rel := range []string{"etc/hostname", "var/mail/root"} {
				if _, err := os.Stat(e.path(rel)); err != nil {
					t.Errorf("%s deleted with etcd dataDir %s", rel, dataDir)
				}
			}
			if !strings.Contains(e.log.String(), "refusing to empty it") {
				t.Errorf("refusal not reported:\n%s", e.log.String())
			}
			if _, err := os.Stat(e.path("etc/kubernetes/pki/ca.key")); !os.IsNotExist(err) {
				t.Errorf("the rest was not cleaned: %v", err)
			}
		})
	}
}

// TestKnownNamesMatchTheWriters keeps reset's lists in step with the packages that write the
// files.
func TestKnownNamesMatchTheWriters(t *testing.T) {
	t.Parallel()
	specs, err := pki.CertSpecs(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range specs {
		want = append(want, s.CertFile(), s.KeyFile())
	}
	want = append(want, pki.SAKeyFile, pki.SAPubFile)
	got := PKIFiles()
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) || len(got) != 22 {
		t.Errorf("PKIFiles() = %v (%d)\nwant %v", got, len(got), want)
	}
	for _, n := range kubeconfig.KubeconfigNames() {
		f, err := kubeconfig.FileName(n)
		if err != nil || !slices.Contains(kubeconfigFiles, f) {
			t.Errorf("kubeconfig %s (%s, %v) is not in reset's list", n, f, err)
		}
	}
}

// TestLayoutFromUnitsAndManifests: the data dir and certificates dir the components use are found
// in systemd units and static pod manifests too, not only in the supervisor spec.
func TestLayoutFromUnitsAndManifests(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Cluster.Etcd.Local.DataDir = "/data/etcd"
	cfg.Cluster.CertificatesDir = "/srv/pki"

	for _, mode := range []string{"systemd", "static-pod"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			writeModeFiles(t, e, cfg, mode)
			l := Discover(e.p, "", "")
			if !slices.Contains(l.EtcdDataDirs, e.path("data/etcd")) || !slices.Contains(l.CertDirs, e.path("srv/pki")) {
				t.Errorf("data dirs %v, cert dirs %v", l.EtcdDataDirs, l.CertDirs)
			}
			if got := l.EtcdArgs()["name"]; got != "node1" {
				t.Errorf("etcd --name = %q (%v)", got, l.Warnings)
			}
			if len(l.Modes) != 1 || l.Modes[0].Mode != mode || !slices.Equal(l.Modes[0].Names(), runmode.ControlPlane) {
				t.Errorf("modes %+v, want %s with %v", l.Modes, mode, runmode.ControlPlane)
			}
			if got := len(l.contained()); (mode == "static-pod") != (got == 5) {
				t.Errorf("%d contained components in %s mode", got, mode)
			}
			e.write("data/etcd/member/wal/0.wal", "wal")
			e.write("srv/pki/ca.key", "pem")
			e.write("srv/pki/etcd/peer.key", "pem")
			if err := runAll(t, e.newReset(Options{Force: true})); err != nil {
				t.Fatal(err)
			}
			if got := relPaths(t, e.root); len(got) != 0 {
				t.Errorf("left: %v\n%s", got, e.log.String())
			}
		})
	}
}

// TestExecuteStaysInRoot: a directory swapped for a link out of the root between planning and
// removal does not lead the removal out of the root.
func TestExecuteStaysInRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.populateInit()
	plan, err := planCleanup(planInput{p: e.p, layout: Discover(e.p, "", "")})
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	victim := filepath.Join(outside, "kubelet-client-2026-01-01-00-00-00.pem")
	os.WriteFile(victim, []byte("someone else's"), 0o600)
	if err := os.Rename(e.path("var/lib/kubelet/pki"), e.path("var/lib/kubelet/pki.moved")); err != nil {
		t.Fatal(err)
	}
	e.symlink(outside, "var/lib/kubelet/pki")

	_, _, err = plan.execute()
	if err == nil {
		t.Error("removing through the swapped directory did not fail")
	}
	if _, serr := os.Stat(victim); serr != nil {
		t.Errorf("a file outside the root was removed: %v (execute: %v)", serr, err)
	}
}

// TestLayoutFollowsUnitDropIns: a systemd-mode etcd whose data dir an operator moved in a drop-in
// (ExecStart= cleared and set again, or the flag taken from Environment=/EnvironmentFile=) runs
// with that data dir, so that is the one reset must find and empty — the same reading of the unit
// show-apiserver-options does for kube-apiserver.
func TestLayoutFollowsUnitDropIns(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cases := map[string]struct {
		dropIns map[string]string // file name in etcd.service.d -> content
		envFile string            // content of /etc/default/etcd (a host path, under the root), "" for none
	}{
		"ExecStart replaced": {dropIns: map[string]string{
			"20-data.conf": "[Service]\nExecStart=\nExecStart=@BIN@ --name=node1 --data-dir=@ROOT@/srv/etcd-moved --cert-file=/etc/kubernetes/pki/etcd/server.crt\n",
		}},
		"Environment in a drop-in": {dropIns: map[string]string{
			"10-exec.conf": "[Service]\nExecStart=\nExecStart=@BIN@ --name=node1 $ETCD_EXTRA \"--data-dir=${DATA}\"\n",
			"20-env.conf":  "[Service]\nEnvironment=\"DATA=@ROOT@/srv/etcd-moved\" ETCD_EXTRA=--quota-backend-bytes=1\n",
		}},
		"EnvironmentFile": {
			dropIns: map[string]string{
				"10-exec.conf": "[Service]\nEnvironmentFile=-/etc/default/etcd-missing\nEnvironmentFile=/etc/default/etcd\nExecStart=\nExecStart=@BIN@ --name=node1 $ETCD_ARGS\n",
			},
			envFile: "# moved to the big disk\nETCD_ARGS=\"--data-dir=@ROOT@/srv/etcd-moved --snapshot-count=10000\"\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			writeModeFiles(t, e, cfg, "systemd")
			for f, content := range tc.dropIns {
				e.write("etc/systemd/system/etcd.service.d/"+f, strings.NewReplacer("@BIN@", e.p.ComponentBinary(components.EtcdName), "@ROOT@", e.root).Replace(content))
			}
			if tc.envFile != "" {
				e.write("etc/default/etcd", strings.ReplaceAll(tc.envFile, "@ROOT@", e.root))
			}
			l := Discover(e.p, "", "")
			if len(l.Warnings) != 0 {
				t.Errorf("warnings: %v", l.Warnings)
			}
			if !slices.Contains(l.EtcdDataDirs, e.path("srv/etcd-moved")) {
				t.Errorf("data dirs %v do not include the drop-in's %s", l.EtcdDataDirs, e.path("srv/etcd-moved"))
			}
			e.write("srv/etcd-moved/member/wal/0.wal", "wal")
			e.write("srv/etcd-moved/member/snap/db", "bolt")
			if err := runAll(t, e.newReset(Options{Force: true})); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(e.path("srv/etcd-moved/member")); !os.IsNotExist(err) {
				t.Errorf("the drop-in's etcd data dir was not emptied (%v):\n%s", err, e.log.String())
			}
			// The drop-ins and the environment file are the operator's: reset leaves them.
			for f := range tc.dropIns {
				if _, err := os.Stat(e.path("etc/systemd/system/etcd.service.d/" + f)); err != nil {
					t.Errorf("the operator's drop-in %s was removed: %v", f, err)
				}
			}
		})
	}
}
