package images

// kube-proxy's iptables. Every kube-proxy mode on Linux runs netfilter tools (iptables mode:
// iptables, iptables-save, iptables-restore and their ip6tables twins; nftables mode: nft), which
// a Go binary does not carry. Debian ships them dynamically linked only, so the kube-proxy image
// gets the building host's iptables program with the shared libraries it and its extensions load
// and the dynamic loader, copied into their own layer: the image then runs on any node's kernel,
// with the same netfilter backend (nf_tables or legacy) the building host's iptables uses.

import (
	"archive/tar"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// iptablesCommands are the programs kube-proxy's iptables mode runs (k8s.io/kubernetes'
// pkg/util/iptables), found on the PATH the image config sets.
var iptablesCommands = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// hostFile is one file of a layer copied from the host: a regular file from src, or a symlink to
// link.
type hostFile struct {
	name string // path in the image, relative, no leading slash
	src  string
	link string
}

// hostIptables finds the host's iptables (under root, "/" outside tests) and returns the files of
// a layer that runs it: the multi-call program the commands resolve to (xtables-nft-multi or
// xtables-legacy-multi) in usr/sbin with the commands as symlinks to it, its extensions
// directory, every shared library they need and the dynamic loader. Also the host paths it
// copied, for the image's label.
func hostIptables(root string) ([]hostFile, []string, error) {
	const install = "install the iptables package on this host (Debian: apt-get install iptables), or disable kube-proxy (proxy.disabled) and run another service proxy"
	var multi string
	for _, c := range iptablesCommands {
		var resolved string
		var err error
		for _, dir := range []string{"usr/sbin", "sbin", "usr/bin"} {
			if resolved, err = filepath.EvalSymlinks(filepath.Join(root, dir, c)); err == nil {
				break
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("the kube-proxy image needs this host's %s, which is not there: %v; %s", c, err, install)
		}
		if multi == "" {
			multi = resolved
		} else if resolved != multi {
			return nil, nil, fmt.Errorf("the kube-proxy image needs one iptables program for all of %s, but this host's %s is %s and %s is %s", strings.Join(iptablesCommands, ", "), iptablesCommands[0], multi, c, resolved)
		}
	}
	files := []hostFile{{name: "usr/sbin/" + filepath.Base(multi), src: multi}}
	for _, c := range iptablesCommands {
		files = append(files, hostFile{name: "usr/sbin/" + c, link: filepath.Base(multi)})
	}
	sources := []string{hostPath(root, multi)}

	c := closure{root: root, files: map[string]string{}}
	var links []hostFile
	if err := c.add(multi); err != nil {
		return nil, nil, err
	}
	// The extensions (libxt_*.so, ...) are loaded with dlopen from the xtables directory beside
	// libxtables: not in the program's DT_NEEDED, so they are copied whole.
	if lib, ok := c.libxtables(); ok {
		dir := filepath.Join(filepath.Dir(lib), "xtables")
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("iptables' extensions in %s: %w; %s", dir, err, install)
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".so") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			switch {
			case e.Type().IsRegular():
				if err := c.add(path); err != nil {
					return nil, nil, err
				}
			case e.Type()&os.ModeSymlink != 0:
				// Aliases within the directory (libxt_MASQUERADE.so -> libxt_NAT.so) stay links.
				target, err := os.Readlink(path)
				if err != nil {
					return nil, nil, err
				}
				if strings.Contains(target, "/") {
					return nil, nil, fmt.Errorf("iptables' extension %s links out of its directory, to %s", path, target)
				}
				links = append(links, hostFile{name: strings.TrimPrefix(hostPath(root, path), "/"), link: target})
			}
		}
		sources = append(sources, hostPath(root, dir))
	}
	names := make([]string, 0, len(c.files))
	for name := range c.files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name != files[0].name {
			files = append(files, hostFile{name: name, src: c.files[name]})
		}
	}
	return append(files, links...), sources, nil
}

// hostPath is path, a file under root, as the host under root names it.
func hostPath(root, path string) string {
	return "/" + strings.TrimLeft(strings.TrimPrefix(path, strings.TrimSuffix(root, "/")), "/")
}

// closure collects ELF files and, transitively, the shared libraries and loader they need.
type closure struct {
	root  string
	files map[string]string // image path -> host file
}

// libDirs are where the dynamic loader looks by default (Debian's multiarch directories first),
// so that libraries placed at the same paths in the image are found without an ld.so.cache.
func (c *closure) libDirs() []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	var dirs []string
	if triplet != "" {
		dirs = append(dirs, "lib/"+triplet, "usr/lib/"+triplet)
	}
	return append(dirs, "lib64", "usr/lib64", "lib", "usr/lib")
}

func (c *closure) libxtables() (string, bool) {
	for name, src := range c.files {
		if strings.HasPrefix(filepath.Base(name), "libxtables.so") {
			return src, true
		}
	}
	return "", false
}

// add records the ELF file at path under its resolved path, and what it needs.
func (c *closure) add(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	return c.addAs(strings.TrimPrefix(hostPath(c.root, real), "/"), real)
}

// addAs records the ELF file real under name in the image, and what it needs.
func (c *closure) addAs(name, real string) error {
	if _, done := c.files[name]; done {
		return nil
	}
	c.files[name] = real
	f, err := elf.Open(real)
	if err != nil {
		return fmt.Errorf("%s: %w", real, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		buf := make([]byte, p.Filesz)
		if _, err := p.ReadAt(buf, 0); err != nil {
			return fmt.Errorf("%s: reading its interpreter: %w", real, err)
		}
		interp := strings.TrimRight(string(buf), "\x00")
		// The loader must be at exactly the path the program names (e.g. /lib64/...), which
		// on a merged-/usr host is a symlink: the image gets the file itself there.
		src, err := filepath.EvalSymlinks(filepath.Join(c.root, interp))
		if err != nil {
			return fmt.Errorf("%s: its interpreter %s: %w", real, interp, err)
		}
		c.files[strings.TrimPrefix(interp, "/")] = src
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", real, err)
	}
	for _, lib := range libs {
		found := false
		for _, dir := range c.libDirs() {
			// The loader looks a library up by the name the program needs (libxtables.so.12,
			// on the host a symlink to libxtables.so.12.6.0): the image has the file under
			// that name, in the directory's resolved path (lib is usr/lib on merged-/usr hosts).
			d, err := filepath.EvalSymlinks(filepath.Join(c.root, dir))
			if err != nil {
				continue
			}
			src, err := filepath.EvalSymlinks(filepath.Join(d, lib))
			if err != nil {
				continue
			}
			if err := c.addAs(strings.TrimPrefix(hostPath(c.root, filepath.Join(d, lib)), "/"), src); err != nil {
				return err
			}
			found = true
			break
		}
		if !found {
			return fmt.Errorf("%s needs %s, which is in none of %s", real, lib, strings.Join(c.libDirs(), ", "))
		}
	}
	return nil
}

// hostLayerFiles writes files into a layer with their parent directories, owned by root, with
// fixed times so that the same host files make the same digest.
func hostLayerFiles(tw *tar.Writer, files []hostFile) error {
	var dirs []string
	for _, f := range files {
		for d := filepath.Dir(f.name); d != "." && d != "/"; d = filepath.Dir(d) {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	sort.Strings(dirs) // parents before children
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, f := range files {
		if f.link != "" {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: f.name, Linkname: f.link, Mode: 0o777,
				ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
				return err
			}
			continue
		}
		if err := addFile(tw, f.name, f.src); err != nil {
			return err
		}
	}
	return nil
}
