// Package golden owns the golden-file convention of kubestrap's tests: rendered artifacts are
// compared byte for byte with files under testdata/, and `go test ./... -update` rewrites those
// files instead. Only tests import it.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ instead of comparing with them")

// Updating reports whether this run rewrites golden files (-update).
func Updating() bool { return *update }

// Check compares got with the golden file at path, or writes got there with -update.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run the test with -update to accept the change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
