package images

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// On a host with iptables (Debian's is dynamically linked), the layer's files are closed under
// what the dynamic loader needs: every library any copied program or extension names is copied
// too, and the loader sits at the path the program names.
func TestHostIptablesIsSelfContained(t *testing.T) {
	if _, err := filepath.EvalSymlinks("/usr/sbin/iptables"); err != nil {
		t.Skipf("this host has no iptables: %v", err)
	}
	files, sources, err := hostIptables("/")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]hostFile{}
	for _, f := range files {
		byName[f.name] = f
	}
	multi := files[0]
	if multi.link != "" || !strings.HasPrefix(multi.name, "usr/sbin/xtables-") || sources[0] != "/"+multi.name {
		t.Fatalf("first file %+v (sources %v), want the host's xtables multi-call program", multi, sources)
	}
	for _, c := range iptablesCommands {
		if f, ok := byName["usr/sbin/"+c]; !ok || f.link != filepath.Base(multi.name) {
			t.Errorf("usr/sbin/%s is %+v, want a symlink to %s", c, f, filepath.Base(multi.name))
		}
	}
	have := map[string]bool{} // base names of the copied libraries
	for _, f := range files {
		have[filepath.Base(f.name)] = true
	}
	exts := 0
	for _, f := range files {
		if f.link != "" {
			continue
		}
		if strings.Contains(f.name, "/xtables/") {
			exts++
		}
		e, err := elf.Open(f.src)
		if err != nil {
			t.Fatalf("%s: %v", f.src, err)
		}
		libs, _ := e.ImportedLibraries()
		for _, lib := range libs {
			if !have[lib] {
				t.Errorf("%s needs %s, which the layer lacks", f.name, lib)
			}
		}
		for _, p := range e.Progs {
			if p.Type == elf.PT_INTERP {
				buf := make([]byte, p.Filesz)
				_, _ = p.ReadAt(buf, 0)
				interp := strings.TrimPrefix(strings.TrimRight(string(buf), "\x00"), "/")
				if g, ok := byName[interp]; !ok || g.link != "" {
					t.Errorf("%s's loader /%s is not a file of the layer", f.name, interp)
				}
			}
		}
		e.Close()
	}
	// kube-proxy's rules use these; MASQUERADE is a link to libxt_NAT.so on Debian.
	for _, ext := range []string{"libxt_comment.so", "libxt_statistic.so", "libxt_MASQUERADE.so", "libxt_DNAT.so", "libxt_mark.so"} {
		if !have[ext] {
			t.Errorf("extension %s not copied", ext)
		}
	}
	if exts < 10 {
		t.Errorf("%d extensions copied", exts)
	}
}

func TestHostIptablesErrors(t *testing.T) {
	root := t.TempDir()
	if _, _, err := hostIptables(root); err == nil || !strings.Contains(err.Error(), "needs this host's iptables") || !strings.Contains(err.Error(), "apt-get install iptables") {
		t.Errorf("no iptables: err = %v", err)
	}

	// Two backends for one image: refused, naming both.
	root = fakeIptablesRoot(t)
	sbin := filepath.Join(root, "usr", "sbin")
	if err := os.WriteFile(filepath.Join(sbin, "xtables-legacy-multi"), minimalELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(sbin, "ip6tables")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("xtables-legacy-multi", filepath.Join(sbin, "ip6tables")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := hostIptables(root); err == nil || !strings.Contains(err.Error(), "xtables-nft-multi") || !strings.Contains(err.Error(), "xtables-legacy-multi") {
		t.Errorf("mixed backends: err = %v", err)
	}
}
