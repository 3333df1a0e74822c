package e2e

import (
	"encoding/json"
	"testing"
)

// TestVersionNamesTheBundledComponents: the binary under test (the release shape's front program,
// which links no component) reports the versions of the component program it carries.
func TestVersionNamesTheBundledComponents(t *testing.T) {
	r := run(t, "version", "-o", "json")
	if r.code != 0 {
		t.Fatalf("version: exit %d: %s", r.code, r.stderr)
	}
	var v struct{ Kubernetes, Etcd string }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, r.stdout)
	}
	if v.Kubernetes != "v1.37.2" || v.Etcd != "v3.7.0" {
		t.Errorf("version reports kubernetes %q, etcd %q; want v1.37.2 and v3.7.0", v.Kubernetes, v.Etcd)
	}
}
