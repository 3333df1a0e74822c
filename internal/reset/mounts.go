package reset

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountTable lists the mount points of this process's mount namespace, as absolute paths with
// symlinks resolved (the way the kernel reports them).
type MountTable interface {
	MountPoints() ([]string, error)
}

// ProcMounts is the real mount table, /proc/self/mountinfo.
type ProcMounts struct{}

func (ProcMounts) MountPoints() ([]string, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, filepath.Clean(m.Mountpoint))
	}
	return out, nil
}

// StaticMounts is a fixed mount table, for tests and dry runs that must not depend on the host.
type StaticMounts []string

func (s StaticMounts) MountPoints() ([]string, error) { return slices.Clone(s), nil }

// unmountFlagValues are the umount2(2) flags ResetConfiguration.unmountFlags may name.
var unmountFlagValues = map[string]int{
	"MNT_FORCE":       unix.MNT_FORCE,
	"MNT_DETACH":      unix.MNT_DETACH,
	"MNT_EXPIRE":      unix.MNT_EXPIRE,
	"UMOUNT_NOFOLLOW": unix.UMOUNT_NOFOLLOW,
}

// unmountFlags turns flag names into umount2 flags. UMOUNT_NOFOLLOW is always added: a mount
// point that was swapped for a symlink must not make reset unmount whatever it points at.
func unmountFlags(names []string) (int, error) {
	flags := unix.UMOUNT_NOFOLLOW
	for _, n := range names {
		v, ok := unmountFlagValues[n]
		if !ok {
			return 0, fmt.Errorf("unknown unmount flag %q: use MNT_FORCE, MNT_DETACH, MNT_EXPIRE or UMOUNT_NOFOLLOW", n)
		}
		flags |= v
	}
	return flags, nil
}

// realUnmount is umount2(2).
func realUnmount(path string, flags int) error { return unix.Unmount(path, flags) }

// mountsUnder returns the mount points strictly below dir, deepest first, so that nested mounts
// come off before the ones they sit on.
func mountsUnder(mounts []string, dir string) []string {
	var out []string
	for _, m := range mounts {
		if isBelow(m, dir) && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		if d := strings.Count(b, "/") - strings.Count(a, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return out
}

// isBelow reports whether path lies strictly inside dir (both clean and absolute).
func isBelow(path, dir string) bool {
	if dir == "/" {
		return path != "/" && strings.HasPrefix(path, "/")
	}
	return strings.HasPrefix(path, dir+"/")
}

// isWithin reports whether path is dir or lies inside it.
func isWithin(path, dir string) bool { return path == dir || isBelow(path, dir) }
