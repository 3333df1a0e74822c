package csrapprover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// HealthServer is the approver's health endpoint: /healthz answers 200 while the process serves,
// /readyz answers 200 once ready reports nil and 503 with ready's reason otherwise. It is plain
// HTTP and must listen on a loopback address: it reveals nothing but the approver's state, and
// only the node itself (the kubelet's probes, the supervisor, init's waits) asks.
type HealthServer struct {
	ln    net.Listener
	ready func() error
}

// ListenHealth binds addr (host:port, a loopback IP) for ServeHealth. Binding before anything else
// makes a taken port a start-up error that names it, rather than a silent probe failure.
func ListenHealth(addr string, ready func() error) (*HealthServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("health address %q: %w (want a loopback host:port such as 127.0.0.1:10261)", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return nil, fmt.Errorf("health address %q: the host must be a loopback IP address such as 127.0.0.1: the endpoint is unauthenticated plain HTTP", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve health on %s: %w (another process holds the port: stop it, or move the approver with csrApprover.healthPort in the KubestrapConfiguration)", addr, err)
	}
	return &HealthServer{ln: ln, ready: ready}, nil
}

// Addr is the address the server listens on.
func (h *HealthServer) Addr() string { return h.ln.Addr().String() }

// Serve answers health requests until ctx ends, then closes the listener.
func (h *HealthServer) Serve(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := h.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve health on %s: %w", h.Addr(), err)
	}
	<-done
	return nil
}
