package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

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
	// Files writes the unit, the link and the installed binary; nil is the disk, reporting on
	// Log. A dry-run writer writes and links nothing and prints the full unit instead.
	Files fsutil.Writer
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

func (o Options) files() fsutil.Writer { return fsutil.OrDisk(o.Files, o.Log) }

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
	w := o.files()
	exe := o.Installed
	if exe == "" {
		if exe, err = InstallBinary(w, p, o.Executable, o.FS, o.log()); err != nil {
			return err
		}
	} else if !w.DryRun() {
		// A dry run installed nothing to check.
		if err := CheckInstalled(exe, o.FS); err != nil {
			return err
		}
	}
	if err := supervisor.LinkComponents(w, p, []string{c.Name}, exe); err != nil {
		return fmt.Errorf("link %s: %w", p.ComponentBinary(c.Name), err)
	}
	if !w.DryRun() {
		if err := checkDirChain(p.BinDir(), o.FS, false); err != nil {
			return unsafeInstall(p.ComponentBinary(c.Name), err)
		}
	}
	prefix := "[control-plane]"
	if c.Name == components.EtcdName {
		prefix = "[etcd]"
	}
	return WriteFile(w, p.SystemdUnit(UnitName(c.Name)), data, UnitFileMode, "systemd unit for "+c.Name, prefix, o.log())
}

// WriteFile writes data to path through w unless path already holds exactly data, logging
// "<prefix> Writing <what> to <path>" or "Using existing"; a dry-run writer prints the content
// instead. Missing directories are created 0755, as /etc/systemd/system and /var/lib/kubelet
// parents are.
func WriteFile(w fsutil.Writer, path string, data []byte, perm fs.FileMode, what, prefix string, log io.Writer) error {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		fmt.Fprintf(log, "%s Using existing %s %s\n", prefix, what, path)
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	}
	fmt.Fprintf(log, "%s Writing %s to %s\n", prefix, what, path)
	return w.WriteFile(path, data, perm, fsutil.ShowContent())
}
