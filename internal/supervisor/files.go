package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kubestrap/kubestrap/internal/fsutil"
)

func writePidFile(path string, pid int) error {
	return fsutil.WriteFileAtomic(path, []byte(strconv.Itoa(pid)+"\n"), 0o644)
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

// removeIfExists removes path, treating "already gone" as success.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
