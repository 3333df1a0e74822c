// Package logx owns kubestrap's verbose output, the -v/--verbosity flag. Its Logger is the
// io.Writer the commands already hand every domain function for "[phase] message" progress
// lines, with a level attached: progress lines pass through unchanged, and a package that wants
// to say more asks for a level (Printf(w, 1, ...)) on the writer it was given. So the level
// reaches every package through the Log fields it already has, and a writer that is not a Logger
// (a test's buffer, nil) simply means level 0.
//
// The levels: 0 prints progress only; 1 adds each file written (path, mode, size; what a dry run
// would write too) or removed and each wait (what for, when it ends, how long it took); 2 adds each API
// request (method, URL, status, duration). Verbose lines start with "[v1]" or "[v2]" and go to
// the same writer, stderr. Nothing here logs a header, a body or a URL's user info: tokens, keys
// and Authorization headers never reach the log.
package logx

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Levels of detail, for -v.
const (
	// Files and waits.
	LevelFiles = 1
	// API requests.
	LevelAPI = 2
)

// Logger is a leveled writer. Its Write passes whole writes through under a lock, so lines from
// concurrent goroutines (the control plane's health waits) do not interleave.
type Logger struct {
	mu    *sync.Mutex
	w     io.Writer
	level int
}

// New returns a Logger writing to w (nil discards) at verbosity level.
func New(w io.Writer, level int) *Logger {
	if w == nil {
		w = io.Discard
	}
	return &Logger{mu: &sync.Mutex{}, w: w, level: level}
}

// Write writes p unchanged: the progress lines every level shows.
func (l *Logger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Level is the logger's verbosity.
func (l *Logger) Level() int { return l.level }

// Printf writes one "[v<level>] ..." line when the logger's verbosity is at least level.
func (l *Logger) Printf(level int, format string, args ...any) {
	if l.level < level {
		return
	}
	line := fmt.Sprintf("[v%d] ", level) + fmt.Sprintf(format, args...) + "\n"
	l.Write([]byte(line))
}

// From returns w's Logger: w itself when it is one, else a level-0 Logger over w.
func From(w io.Writer) *Logger {
	if l, ok := w.(*Logger); ok && l != nil {
		return l
	}
	return New(w, 0)
}

// Enabled reports whether w is a Logger whose verbosity is at least level.
func Enabled(w io.Writer, level int) bool {
	l, ok := w.(*Logger)
	return ok && l != nil && l.level >= level
}

// Printf writes a level line to w when w is a Logger verbose enough; otherwise nothing.
func Printf(w io.Writer, level int, format string, args ...any) {
	if Enabled(w, level) {
		w.(*Logger).Printf(level, format, args...)
	}
}

// FileWritten reports a file put on disk (level 1), or one a dry run would have written. The
// content is never shown, only its size: it may be a key.
func FileWritten(w io.Writer, path string, mode fs.FileMode, size int, dryRun bool) {
	if dryRun {
		Printf(w, LevelFiles, "would write %s (mode %04o, %d bytes; dry run)", path, mode.Perm(), size)
		return
	}
	Printf(w, LevelFiles, "wrote %s (mode %04o, %d bytes)", path, mode.Perm(), size)
}

// FileRemoved reports a file or directory taken off disk (level 1).
func FileRemoved(w io.Writer, path string) {
	Printf(w, LevelFiles, "removed %s", path)
}

// Linked reports a symlink put on disk (level 1).
func Linked(w io.Writer, link, target string) {
	Printf(w, LevelFiles, "linked %s -> %s", link, target)
}

// Wait reports the start of a wait at level 1 and returns the function that reports its end,
// with how long it took and, when it failed, why:
//
//	done := logx.Wait(log, "the kube-apiserver at %s", url)
//	err := ...
//	done(err)
func Wait(w io.Writer, format string, args ...any) func(err error) {
	if !Enabled(w, LevelFiles) {
		return func(error) {}
	}
	what := fmt.Sprintf(format, args...)
	start := time.Now()
	Printf(w, LevelFiles, "waiting for %s", what)
	return func(err error) {
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			Printf(w, LevelFiles, "stopped waiting for %s after %s: %v", what, took, err)
			return
		}
		Printf(w, LevelFiles, "done waiting for %s after %s", what, took)
	}
}

// ConfigureClient makes the clients built from rc log each request on w at level 2. It chains
// onto a wrapper rc may already have, and changes nothing below level 2.
func ConfigureClient(rc *rest.Config, w io.Writer) {
	if !Enabled(w, LevelAPI) {
		return
	}
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &roundTripper{next: rt, log: w.(*Logger)} })
}

// roundTripper logs method, URL (without user info), status and duration; never a header.
type roundTripper struct {
	next http.RoundTripper
	log  *Logger
}

func (t *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	took := time.Since(start).Round(time.Millisecond)
	u := redactURL(req.URL)
	if err != nil {
		t.log.Printf(LevelAPI, "%s %s failed after %s: %v", req.Method, u, took, err)
		return resp, err
	}
	t.log.Printf(LevelAPI, "%s %s %s in %s", req.Method, u, resp.Status, took)
	return resp, err
}

// redactURL drops user info (a password) from u.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Redacted()
}
