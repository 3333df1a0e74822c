package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/config"
	"github.com/kubestrap/kubestrap/internal/fsutil"
	"github.com/kubestrap/kubestrap/internal/paths"
)

// crashFS runs the real file operations until its budget is used up; the next operation
// "crashes" the process (a panic the test recovers), so nothing after it runs, not even the
// error handling of writePair: the files are left exactly as a crash would leave them. With
// failOnly the operation returns an error instead.
type crashFS struct {
	fsutil.Writer
	budget   int
	failOnly bool
	ops      []string
}

type crashed struct{}

func (c *crashFS) step(op string) error {
	c.ops = append(c.ops, op)
	if len(c.ops) <= c.budget {
		return nil
	}
	if c.failOnly {
		return errors.New("injected failure at " + op)
	}
	panic(crashed{})
}

func (c *crashFS) WriteFile(path string, data []byte, perm os.FileMode, opts ...fsutil.Option) error {
	if err := c.step("write " + filepath.Base(path)); err != nil {
		return err
	}
	return c.Writer.WriteFile(path, data, perm, opts...)
}

func (c *crashFS) Rename(oldpath, newpath string) error {
	if err := c.step("rename " + filepath.Base(oldpath)); err != nil {
		return err
	}
	return c.Writer.Rename(oldpath, newpath)
}

// renewWith runs Renew of the apiserver pair through fsys and reports whether it crashed.
func renewWith(t *testing.T, p pathsAndCfg, fsys *crashFS, now time.Time) (didCrash bool, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crashed); !ok {
				panic(r)
			}
			didCrash = true
		}
	}()
	return false, Renew(p.cfg, p.p, []string{APIServer}, Options{Now: fixedClock(now), Files: fsys})
}

// pairOnDisk reads apiserver.crt/.key and says whether they are one pair.
func pairOnDisk(t *testing.T, dir string) (cert *x509.Certificate, matched bool) {
	t.Helper()
	cert, err := ReadCert(filepath.Join(dir, "apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ReadKey(filepath.Join(dir, "apiserver.key"))
	if err != nil {
		t.Fatal(err)
	}
	return cert, publicKeysEqual(cert.PublicKey, key.Public())
}

// TestRenewCrashBetweenWrites crashes renewal of the apiserver pair at every step of its commit
// and checks, for each, that no reader accepts a mismatched pair and that the next renew (or
// init) leaves a whole pair: the old one when the crash came before the key was committed, the
// new one after.
func TestRenewCrashBetweenWrites(t *testing.T) {
	t.Parallel()
	steps := []string{"write apiserver.key.tmp-renew", "write apiserver.crt.tmp-renew", "rename apiserver.key.tmp-renew", "rename apiserver.crt.tmp-renew"}
	for budget := range len(steps) {
		t.Run(strings.ReplaceAll(steps[budget], " ", "_"), func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			p, _ := newPKI(t, cfg)
			dir := certDir(p, cfg)
			old, _ := pairOnDisk(t, dir)
			t1 := t0.Add(time.Hour)

			fsys := &crashFS{Writer: fsutil.NewDisk(nil), budget: budget}
			didCrash, err := renewWith(t, pathsAndCfg{p, cfg}, fsys, t1)
			if !didCrash {
				t.Fatalf("no crash (err %v, ops %v)", err, fsys.ops)
			}
			if got := fsys.ops[len(fsys.ops)-1]; got != steps[budget] {
				t.Fatalf("crashed at %q, want %q (ops %v)", got, steps[budget], fsys.ops)
			}

			// Before any recovery: the readers either see a whole pair or refuse with a message
			// that says how to finish.
			cur, matched := pairOnDisk(t, dir)
			_, _, expErr := CheckExpirationAt(cfg, p, t1)
			ensureErr := EnsureCerts(cfg, p, []string{APIServer}, Options{Now: fixedClock(t1)})
			if matched {
				if cur.SerialNumber.Cmp(old.SerialNumber) != 0 {
					t.Errorf("a whole pair after the crash must be the old one (the commit had not begun)")
				}
				if expErr != nil || ensureErr != nil {
					t.Errorf("readers refused a whole pair: check-expiration %v, init %v", expErr, ensureErr)
				}
			} else {
				for what, err := range map[string]error{"check-expiration": expErr, "init": ensureErr} {
					if err == nil || !strings.Contains(err.Error(), "kubestrap certs renew apiserver") {
						t.Errorf("%s on a half-committed pair: %v, want an error pointing at 'kubestrap certs renew apiserver'", what, err)
					}
				}
			}

			// The next renewal completes or discards the interrupted one, then renews.
			var log bytes.Buffer
			if err := Renew(cfg, p, []string{APIServer}, Options{Log: &log, Now: fixedClock(t1.Add(time.Minute))}); err != nil {
				t.Fatalf("renew after the crash: %v", err)
			}
			switch {
			case budget == 0: // crashed before anything was staged
				if strings.Contains(log.String(), "interrupted") {
					t.Errorf("nothing was staged, yet: %s", log.String())
				}
			case matched:
				mustContain(t, log.String(), "Discarded the staged files of an interrupted renewal")
			default:
				mustContain(t, log.String(), "Completed an interrupted renewal")
			}
			if _, ok := pairOnDisk(t, dir); !ok {
				t.Fatal("apiserver.key does not match apiserver.crt after the next renewal")
			}
			for _, f := range []string{"apiserver.crt.tmp-renew", "apiserver.key.tmp-renew"} {
				if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind: %v", f, err)
				}
			}
			if err := EnsureCerts(cfg, p, nil, Options{Now: fixedClock(t1.Add(time.Minute))}); err != nil {
				t.Errorf("init after recovery: %v", err)
			}
		})
	}
}

// TestRecoverPairCompletesHalfCommit checks the roll-forward on its own: after a crash between
// the two renames, recovery installs exactly the staged certificate, which matches the new key.
func TestRecoverPairCompletesHalfCommit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p, _ := newPKI(t, cfg)
	dir := certDir(p, cfg)
	if crashedNow, _ := renewWith(t, pathsAndCfg{p, cfg}, &crashFS{Writer: fsutil.NewDisk(nil), budget: 3}, t0.Add(time.Hour)); !crashedNow {
		t.Fatal("no crash")
	}
	staged, err := os.ReadFile(filepath.Join(dir, "apiserver.crt.tmp-renew"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pairOnDisk(t, dir); ok {
		t.Fatal("the crash point should leave the new key with the old certificate")
	}
	// A dry run only says what it would do.
	msg, err := recoverPair(fsutil.NewDryRun(nil), filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"))
	if err != nil || !strings.Contains(msg, "[dryrun] Would complete") {
		t.Fatalf("dry-run recovery: %q %v", msg, err)
	}
	if _, ok := pairOnDisk(t, dir); ok {
		t.Fatal("dry-run recovery changed the files")
	}
	if _, err := recoverPair(fsutil.NewDisk(nil), filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key")); err != nil {
		t.Fatal(err)
	}
	if _, ok := pairOnDisk(t, dir); !ok {
		t.Fatal("pair not whole after recovery")
	}
	got, _ := os.ReadFile(filepath.Join(dir, "apiserver.crt"))
	if !bytes.Equal(got, staged) {
		t.Error("recovery did not install the staged certificate")
	}
	if fi, err := os.Stat(filepath.Join(dir, "apiserver.key")); err != nil || fi.Mode().Perm() != KeyFileMode {
		t.Errorf("apiserver.key mode after recovery: %v %v", fi.Mode(), err)
	}
}

// TestRenewWriteErrorKeepsPair makes each step of the commit fail with an error (no crash): the
// pair on disk is whole after every one, and only the last leaves something for the next run.
func TestRenewWriteErrorKeepsPair(t *testing.T) {
	t.Parallel()
	for budget := range 4 {
		cfg := testConfig()
		p, _ := newPKI(t, cfg)
		dir := certDir(p, cfg)
		fsys := &crashFS{Writer: fsutil.NewDisk(nil), budget: budget, failOnly: true}
		if _, err := renewWith(t, pathsAndCfg{p, cfg}, fsys, t0.Add(time.Hour)); err == nil {
			t.Fatalf("budget %d: no error", budget)
		}
		_, matched := pairOnDisk(t, dir)
		if budget < 3 {
			if !matched {
				t.Errorf("budget %d: mismatched pair after a failed stage", budget)
			}
			if _, err := os.Stat(filepath.Join(dir, "apiserver.crt.tmp-renew")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("budget %d: staged certificate left after a failed stage", budget)
			}
			continue
		}
		if err := Renew(cfg, p, []string{APIServer}, Options{Now: fixedClock(t0.Add(2 * time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if _, ok := pairOnDisk(t, dir); !ok {
			t.Error("pair not whole after the renewal that followed a failed commit")
		}
	}
}

// TestReadersRefuseMismatchedPair: a key that is not the certificate's is an error for init and
// check-expiration, and a warning for renew (which replaces both).
func TestReadersRefuseMismatchedPair(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	p, _ := newPKI(t, cfg)
	dir := certDir(p, cfg)
	other, err := os.ReadFile(filepath.Join(dir, "front-proxy-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "apiserver.key"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CheckExpirationAt(cfg, p, t0); err == nil || !strings.Contains(err.Error(), "not one key pair") {
		t.Errorf("check-expiration: %v", err)
	}
	if err := EnsureCerts(cfg, p, nil, Options{Now: fixedClock(t0)}); err == nil || !strings.Contains(err.Error(), "not one key pair") {
		t.Errorf("init: %v", err)
	}
	var log bytes.Buffer
	if err := Renew(cfg, p, []string{APIServer}, Options{Log: &log, Now: fixedClock(t0)}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, log.String(), "WARNING: ", "not one key pair; renewing apiserver replaces both files")
	if _, ok := pairOnDisk(t, dir); !ok {
		t.Error("renew left a mismatched pair")
	}
}

type pathsAndCfg struct {
	p   paths.Paths
	cfg *config.Config
}
