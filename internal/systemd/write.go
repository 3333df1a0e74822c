package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kubestrap/kubestrap/internal/components"
	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/supervisor"
)

// UnitFileMode is the mode of unit files: systemd and operators read them, and they hold no
// secret (flags only name key files).
const UnitFileMode fs.FileMode = 0o644

// Options controls WriteUnit.
type Options struct {
	// DryRun writes and links nothing and prints the full unit instead.
	DryRun bool
	// Log receives kubeadm-style progress lines; nil discards them.
	Log io.Writer
	// Executable is the kubestrap binary to run; empty means the running one (os.Executable).
	// It is never run from where it is: see InstallBinary.
	Executable string
	// Installed is the root-owned copy InstallBinary already made of Executable, to save
	// copying and hashing it once per unit; empty means WriteUnit installs it.
	Installed string
	// FS reads file ownership; the zero value is the real file system.
	FS InstallFS
}

func (o Options) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// WriteUnit makes c runnable by systemd: the kubestrap binary installed root-owned
// (InstallBinary), the component symlink p.ComponentBinary(c.Name) to that copy, and the unit file
// <root>/etc/systemd/system/<name>.service. A unit runs as root, so it must never execute a file
// that another user can write: the symlink never points at the running binary's own location
// (a build directory, a download), and its directory is checked like the binary's. An identical
// unit is kept; a different one is replaced (the configuration is its source), which Start
// notices and turns into a restart.
func WriteUnit(cfg *config.Config, p paths.Paths, c components.Component, o Options) error {
	data, err := Render(cfg, p, c)
	if err != nil {
		return err
	}
	exe := o.Installed
	if exe == "" {
		if exe, err = InstallBinary(p, o.Executable, o.FS, o.DryRun, o.log()); err != nil {
			return err
		}
	} else if !o.DryRun {
		if err := CheckInstalled(exe, o.FS); err != nil {
			return err
		}
	}
	if o.DryRun {
		fmt.Fprintf(o.log(), "[dryrun] Would link %s -> %s\n", p.ComponentBinary(c.Name), exe)
	} else {
		if err := supervisor.LinkComponents(p, []string{c.Name}, exe, o.log()); err != nil {
			return fmt.Errorf("link %s: %w", p.ComponentBinary(c.Name), err)
		}
		if err := checkDirChain(p.BinDir(), o.FS, false); err != nil {
			return unsafeInstall(p.ComponentBinary(c.Name), err)
		}
	}
	prefix := "[control-plane]"
	if c.Name == components.EtcdName {
		prefix = "[etcd]"
	}
	return WriteFile(p.SystemdUnit(UnitName(c.Name)), data, UnitFileMode, "systemd unit for "+c.Name, prefix, o.DryRun, o.log())
}

// WriteFile writes data to path atomically unless path already holds exactly data, logging
// "<prefix> Writing <what> to <path>" or "Using existing"; in a dry run it prints the content
// instead. Missing directories are created 0755, as /etc/systemd/system and /var/lib/kubelet
// parents are.
func WriteFile(path string, data []byte, perm fs.FileMode, what, prefix string, dryRun bool, log io.Writer) error {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		fmt.Fprintf(log, "%s Using existing %s %s\n", prefix, what, path)
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	}
	fmt.Fprintf(log, "%s Writing %s to %s\n", prefix, what, path)
	if dryRun {
		fmt.Fprintf(log, "[dryrun] Would write file %s (mode %04o) with content:\n%s", path, perm, data)
		fsutil.ReportDryRun(log, path, data, perm)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	return fsutil.WriteFileAtomic(path, data, perm, fsutil.Log(log))
}
