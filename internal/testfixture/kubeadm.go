// Package testfixture owns the fixtures several test packages share: the configuration files
// upstream kubeadm prints, kept under testdata/kubeadm. Only tests import it.
package testfixture

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// KubeadmDir is testdata/kubeadm of this repository, wherever the test runs from.
func KubeadmDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "kubeadm")
}

// KubeadmFile returns the path of a copy of testdata/kubeadm/name (a file upstream kubeadm
// v1.37.2 printed) with the replacements (old, new, old, new, ...) made. Each old string must occur
// exactly once, so that a regenerated fixture that lost a placeholder fails loudly instead of
// quietly testing less.
func KubeadmFile(t testing.TB, name string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(KubeadmDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if n := strings.Count(s, replace[i]); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once", name, replace[i], n)
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
