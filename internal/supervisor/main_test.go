package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubestrap/kubestrap/internal/paths"
)

// The test binary doubles as every program the tests need, chosen before the testing package
// sees the command line:
//   - `<test binary> supervise --root-dir R`: the detached supervisor that Start launches;
//   - with envFake set (through ComponentSpec.Env): a fake component, named by argv[0];
//   - with envStarter set: a short-lived caller of Start, to show the supervisor outlives it.
const (
	envFake    = "SUPERVISOR_TEST_FAKE"
	envStarter = "SUPERVISOR_TEST_STARTER"

	// Behaviour of a fake component.
	envAddr       = "FAKE_ADDR"        // serve GET /healthz with 200 here
	envReadyDelay = "FAKE_READY_DELAY" // wait this long before serving
	envEvents     = "FAKE_EVENTS"      // append "start|ready|term <name>" lines to this file
	envExit       = "FAKE_EXIT"        // exit at once with this status
	envSpew       = "FAKE_SPEW"        // write this many bytes of output, then "spewed" event
	envIgnoreTerm = "FAKE_IGNORE_TERM" // record SIGTERM but keep running
)

func TestMain(m *testing.M) {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "supervise":
		os.Exit(helperSupervise(os.Args[2:]))
	case os.Getenv(envFake) != "":
		os.Exit(fakeComponent())
	case os.Getenv(envStarter) != "":
		os.Exit(helperStarter(os.Getenv(envStarter)))
	}
	os.Exit(m.Run())
}

// helperSupervise is what `kubestrap supervise` does.
func helperSupervise(args []string) int {
	if len(args) != 2 || args[0] != "--root-dir" {
		fmt.Fprintf(os.Stderr, "usage: supervise --root-dir DIR (got %q)\n", args)
		return 2
	}
	p := paths.MustUnder(args[1])
	spec, err := ReadSpec(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, p, spec, Deps{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperStarter starts the supervisor of root from the spec stored there, prints its pid and
// exits: the supervisor must not care.
func helperStarter(root string) int {
	p := paths.MustUnder(root)
	spec, err := ReadSpec(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exe, _ := os.Executable()
	pid, err := Start(p, spec, exe)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(pid)
	return 0
}

func fakeComponent() int {
	name := filepath.Base(os.Args[0])
	event := func(what string) {
		if path := os.Getenv(envEvents); path != "" {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err == nil {
				fmt.Fprintf(f, "%s %s\n", what, name)
				f.Close()
			}
		}
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	event("start")
	fmt.Printf("%s: started with %q\n", name, os.Args[1:])
	if code := os.Getenv(envExit); code != "" {
		n, _ := strconv.Atoi(code)
		fmt.Fprintf(os.Stderr, "%s: exiting with %d\n", name, n)
		return n
	}
	if n, _ := strconv.Atoi(os.Getenv(envSpew)); n > 0 {
		line := strings.Repeat("x", 99) + "\n"
		for written := 0; written < n; written += len(line) {
			os.Stdout.WriteString(line)
		}
		event("spewed")
	}
	if addr := os.Getenv(envAddr); addr != "" {
		d, _ := time.ParseDuration(os.Getenv(envReadyDelay))
		// Not ready yet, but a SIGTERM is still answered as a real component would.
		notReady := time.After(d)
	waiting:
		for {
			select {
			case <-notReady:
				break waiting
			case <-term:
				event("term")
				if os.Getenv(envIgnoreTerm) == "" {
					return 0
				}
			}
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		event("ready")
		go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "ok")
		}))
	}
	for range term {
		event("term")
		if os.Getenv(envIgnoreTerm) == "" {
			return 0
		}
	}
	return 0
}
