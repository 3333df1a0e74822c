package pki

import (
	"fmt"

	"github.com/kubestrap/kubestrap/internal/fsutil"
)

// Renewal replaces a certificate and its key: two files that must always be read as one pair,
// but no file system renames two files at once. kubeadm writes the key and then the certificate
// in place, so a crash between the two leaves a key that does not match its certificate and
// components that cannot start. kubestrap commits a renewed pair as a small journal instead:
//
//  1. stage: write <key>.tmp-renew, then <crt>.tmp-renew, each atomically;
//  2. commit: rename <key>.tmp-renew over the key, then <crt>.tmp-renew over the certificate.
//
// Because the key is staged first and committed first, the files left by a crash say how far it
// got: a staged key means the commit had not begun (the old pair is intact; the staged files are
// discarded), a staged certificate alone means the key is already the new one (the staged
// certificate, which must match it, is renamed into place). recoverPair performs that
// completion; every reader of a pair (init's "using existing", renew, check-expiration) runs it
// or refuses a mismatched pair with a message that says how to finish the renewal.
// The ".tmp-" infix keeps these files among the ones reset recognises as kubestrap's.
const pendingSuffix = ".tmp-renew"

// pendingPath is the staged name of a file of a pair being renewed.
func pendingPath(path string) string { return path + pendingSuffix }

// writePair replaces certPath and keyPath with a new pair through the staged commit above. The
// writer's Rename is durable: the key's rename is on disk before the certificate's, or a crash
// could persist the second without the first.
func writePair(fsys fsutil.Writer, certPath, keyPath string, certPEM, keyPEM []byte) error {
	keyStaged, certStaged := pendingPath(keyPath), pendingPath(certPath)
	discard := func() {
		_ = fsys.Remove(keyStaged)
		_ = fsys.Remove(certStaged)
	}
	if err := fsys.WriteFile(keyStaged, keyPEM, KeyFileMode); err != nil {
		discard()
		return err
	}
	if err := fsys.WriteFile(certStaged, certPEM, CertFileMode); err != nil {
		discard()
		return err
	}
	if err := fsys.Rename(keyStaged, keyPath); err != nil {
		discard()
		return fmt.Errorf("installing %s: %w", keyPath, err)
	}
	if err := fsys.Rename(certStaged, certPath); err != nil {
		return fmt.Errorf("installing %s: %w (%s already holds the new key: run the same 'kubestrap certs renew' again to complete the renewal from %s)",
			certPath, err, keyPath, certStaged)
	}
	return nil
}

// recoverPair finishes or discards a renewal of certPath/keyPath that a crash interrupted, and
// returns a message saying which ("" when nothing was pending). A dry-run writer only says what it
// would do.
func recoverPair(fsys fsutil.Writer, certPath, keyPath string) (string, error) {
	dryRun := fsys.DryRun()
	keyStaged, certStaged := pendingPath(keyPath), pendingPath(certPath)
	keyPending, err := fileExists(keyStaged)
	if err != nil {
		return "", err
	}
	certPending, err := fileExists(certStaged)
	if err != nil {
		return "", err
	}
	switch {
	case keyPending:
		// The commit had not begun: the pair in place is the old one, still whole.
		if dryRun {
			return fmt.Sprintf("[dryrun] Would discard the staged files of an interrupted renewal of %s", certPath), nil
		}
		for _, f := range []string{keyStaged, certStaged} {
			if err := fsys.Remove(f); err != nil {
				return "", fmt.Errorf("discarding %s: %w", f, err)
			}
		}
		return fmt.Sprintf("[certs] Discarded the staged files of an interrupted renewal of %s; the previous pair is intact", certPath), nil
	case certPending:
		// The key was committed; the certificate that belongs to it is the staged one.
		cert, err := ReadCert(certStaged)
		if err != nil {
			return "", fmt.Errorf("completing an interrupted renewal: %w", err)
		}
		key, err := ReadKey(keyPath)
		if err != nil {
			return "", fmt.Errorf("completing an interrupted renewal: %w", err)
		}
		if !publicKeysEqual(cert.PublicKey, key.Public()) {
			return "", fmt.Errorf("%s, left by an interrupted renewal, does not match %s: restore both files from a backup, or remove %s, %s and %s and renew them with 'kubestrap init phase certs'",
				certStaged, keyPath, certStaged, certPath, keyPath)
		}
		if dryRun {
			return fmt.Sprintf("[dryrun] Would complete an interrupted renewal: rename %s to %s", certStaged, certPath), nil
		}
		if err := fsys.Rename(certStaged, certPath); err != nil {
			return "", fmt.Errorf("completing an interrupted renewal of %s: %w", certPath, err)
		}
		return fmt.Sprintf("[certs] Completed an interrupted renewal of %s", certPath), nil
	}
	return "", nil
}

// mismatchError explains a certificate and key that are not one pair, pointing at the renewal
// left unfinished when that is the cause.
func mismatchError(certPath, keyPath, renewName string) error {
	if ok, _ := fileExists(pendingPath(certPath)); ok {
		return fmt.Errorf("%s does not match %s: a 'kubestrap certs renew' was interrupted (%s is left); run 'kubestrap certs renew %s' to complete it",
			keyPath, certPath, pendingPath(certPath), renewName)
	}
	return fmt.Errorf("%s does not match %s: they are not one key pair", keyPath, certPath)
}
