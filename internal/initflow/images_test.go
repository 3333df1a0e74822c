package initflow

import (
	"slices"
	"strings"
	"testing"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/config/configtest"
	"github.com/kubestrap/kubestrap/internal/paths"
	"github.com/kubestrap/kubestrap/internal/runmode"
)

// The images phase asks a container runtime only in static-pod mode on the real root: under a
// root dir it says why it does nothing, and the other modes run no images at all. (Ensure's own
// decisions are tested in internal/images with a fake runtime; the real root in e2e.)
func TestImagesPhaseRunsOnlyForStaticPodsOnTheRealRoot(t *testing.T) {
	cfg := configtest.Init("10.0.0.10", "cp-1")
	res := runInit(t, cfg, config.ModeStaticPod, false, []string{"images"}, nil, nil)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if !strings.Contains(res.log.String(), "[images] Skipped: under the root dir "+res.root) || !strings.Contains(res.log.String(), "kubestrap images import") {
		t.Errorf("static-pod mode under a root dir:\n%s", res.log.String())
	}

	for _, mode := range []string{config.ModeLocal, config.ModeSystemd} {
		res := runInit(t, configtest.Init("10.0.0.10", "cp-1"), mode, false, []string{"images"}, nil, nil)
		if res.err != nil || strings.Contains(res.log.String(), "images") {
			t.Errorf("%s mode, whole run: err %v, log:\n%s", mode, res.err, res.log.String())
		}
		res = runInit(t, configtest.Init("10.0.0.10", "cp-1"), mode, false, nil, nil, []string{"images"})
		if res.err != nil || !strings.Contains(res.log.String(), "[images] Skipped: mode \""+mode+"\" runs the components from this binary") {
			t.Errorf("%s mode, init phase images: err %v, log:\n%s", mode, res.err, res.log.String())
		}
	}
}

func TestCRIEndpointDetection(t *testing.T) {
	has := func(socks ...string) func(string) bool {
		return func(p string) bool { return slices.Contains(socks, p) }
	}
	for _, c := range []struct {
		configured string
		present    []string
		want, err  string
	}{
		{configured: "unix:///custom.sock", want: "unix:///custom.sock"},
		{present: []string{"/var/run/containerd/containerd.sock"}, want: "unix:///var/run/containerd/containerd.sock"},
		{present: []string{"/var/run/crio/crio.sock"}, want: "unix:///var/run/crio/crio.sock"},
		{err: "no container runtime found (looked for /var/run/containerd/containerd.sock, /var/run/crio/crio.sock, /var/run/cri-dockerd.sock)"},
		{present: []string{"/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock"}, err: "found several container runtimes (unix:///var/run/containerd/containerd.sock, unix:///var/run/crio/crio.sock): set nodeRegistration.criSocket"},
	} {
		got, err := criEndpoint(c.configured, runmode.FoundCRIEndpoints(paths.MustUnder("/"), has(c.present...)))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q with %v: err %v, want %q", c.configured, c.present, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q with %v: %q, %v; want %q", c.configured, c.present, got, err, c.want)
		}
	}
}
