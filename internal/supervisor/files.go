package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/logx"
)

// The supervisor's runtime state — pid files, status.json, the lock, its own and the components'
// logs — is written with fsutil's functions, not through a command's fsutil.Writer: it changes
// while the detached supervisor runs, long after the command that started it (and chose dry run
// or recorded its writes for rollback) has returned, and a dry run never starts a supervisor.
// What Start installs for it (the component links and the spec) does go through Host.Files.

func writePidFile(path string, pid int, log io.Writer) error {
	return fsutil.WriteFileAtomic(path, []byte(strconv.Itoa(pid)+"\n"), 0o644, fsutil.Log(log))
}

// readPidFile returns 0 and no error when the file does not exist.
func readPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: invalid content %q", path, strings.TrimSpace(string(data)))
	}
	return pid, nil
}

// removeIfExists removes path, treating "already gone" as success; a removal is reported on log
// at -v 1.
func removeIfExists(path string, log io.Writer) error {
	err := os.Remove(path)
	switch {
	case err == nil:
		logx.FileRemoved(log, path)
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	return nil
}
