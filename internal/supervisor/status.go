package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kubestrap/kubestrap/internal/paths"
)

// Report is the state of a root's local control plane. Mode is filled in by the run mode that
// reports it (runmode.Local), which owns the mode's name.
type Report struct {
	Mode                    string            `json:"mode"`
	Root                    string            `json:"rootDir"`
	SupervisorPID           int               `json:"supervisorPID,omitempty"`
	SupervisorRunning       bool              `json:"supervisorRunning"`
	SupervisorStartedAt     time.Time         `json:"supervisorStartedAt,omitzero"`
	SupervisorUptimeSeconds int64             `json:"supervisorUptimeSeconds,omitempty"`
	Components              []ComponentStatus `json:"components"`
}

// ComponentStatus is one component's state. Healthy means running and, when the component has a
// health URL, answering it with 200.
type ComponentStatus struct {
	Name          string    `json:"name"`
	PID           int       `json:"pid,omitempty"`
	Running       bool      `json:"running"`
	State         string    `json:"state,omitempty"`
	StartedAt     time.Time `json:"startedAt,omitzero"`
	UptimeSeconds int64     `json:"uptimeSeconds,omitempty"`
	Restarts      int       `json:"restarts"`
	LastExit      string    `json:"lastExit,omitempty"`
	HealthURL     string    `json:"healthURL,omitempty"`
	Healthy       bool      `json:"healthy"`
	HealthError   string    `json:"healthError,omitempty"`
}

// Running reports whether the supervisor and every component run.
func (r Report) Running() bool {
	if !r.SupervisorRunning {
		return false
	}
	for _, c := range r.Components {
		if !c.Running {
			return false
		}
	}
	return true
}

// Healthy reports whether everything runs and every component answers its health check.
func (r Report) Healthy() bool { return len(r.Problems()) == 0 }

// Problems lists what keeps the control plane from being healthy; none means all is well.
func (r Report) Problems() []string {
	var out []string
	if !r.SupervisorRunning {
		out = append(out, "the supervisor is not running")
	}
	for _, c := range r.Components {
		switch {
		case !c.Running:
			out = append(out, c.Name+" is not running")
		case !c.Healthy:
			out = append(out, fmt.Sprintf("%s is unhealthy: %s", c.Name, c.HealthError))
		}
	}
	return out
}

// Status reports on p's root with the real system; see Host.Status.
func Status(p paths.Paths, health HealthChecker) (Report, error) {
	return Host{}.Status(p, health)
}

// Status reads the root's supervisor spec, status file and pid files, checks which processes
// are alive in the process table (the status file of a supervisor killed with SIGKILL lies) and
// asks every running component's health URL (nil health: CheckHealth). ErrNotStarted means
// nothing was ever started under the root.
func (h Host) Status(p paths.Paths, health HealthChecker) (Report, error) {
	h = h.withDefaults()
	if health == nil {
		health = CheckHealth
	}
	spec, err := ReadSpec(p)
	if err != nil {
		return Report{}, err
	}
	var doc statusDoc
	if data, err := os.ReadFile(statusFile(p)); err == nil {
		if err := json.Unmarshal(data, &doc); err != nil {
			return Report{}, fmt.Errorf("reading %s: %w", statusFile(p), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Report{}, err
	}
	now := h.Clock.Now()
	uptime := func(since time.Time) int64 {
		if since.IsZero() || now.Before(since) {
			return 0
		}
		return int64(now.Sub(since) / time.Second)
	}

	r := Report{Root: p.Root()}
	if pid := h.liveSupervisor(p); pid != 0 {
		r.SupervisorPID, r.SupervisorRunning = pid, true
		if doc.Supervisor.PID == pid {
			r.SupervisorStartedAt = doc.Supervisor.StartedAt
			r.SupervisorUptimeSeconds = uptime(doc.Supervisor.StartedAt)
		}
	} else {
		// The records of a supervisor that is gone describe nothing that runs.
		doc = statusDoc{}
	}
	records := map[string]componentRecord{}
	for _, rec := range doc.Components {
		records[rec.Name] = rec
	}
	for _, cs := range spec.Components {
		rec := records[cs.Name]
		c := ComponentStatus{Name: cs.Name, State: rec.State, Restarts: rec.Restarts, LastExit: rec.LastExit, HealthURL: cs.HealthURL}
		pid := rec.PID
		if pid == 0 {
			pid, _ = readPidFile(p.PidFile(cs.Name))
		}
		if pid = h.componentPid(p, pid); pid != 0 {
			c.PID, c.Running = pid, true
			if rec.PID == pid {
				c.StartedAt, c.UptimeSeconds = rec.StartedAt, uptime(rec.StartedAt)
			}
		} else if c.State == "" || c.State == StateRunning {
			c.State = StateStopped
		}
		r.Components = append(r.Components, c)
	}

	// One slow endpoint must not make status take the sum of all timeouts.
	var wg sync.WaitGroup
	for i := range r.Components {
		c := &r.Components[i]
		if !c.Running {
			continue
		}
		if c.HealthURL == "" {
			c.Healthy = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), HealthTimeout)
			defer cancel()
			if err := health(ctx, c.HealthURL); err != nil {
				c.HealthError = err.Error()
			} else {
				c.Healthy = true
			}
		}()
	}
	wg.Wait()
	return r, nil
}

// WriteTable prints r for people: a header with the mode and supervisor, then one row per
// component.
func (r Report) WriteTable(w io.Writer) error {
	sup := "not running"
	if r.SupervisorRunning {
		sup = fmt.Sprintf("running, pid %d", r.SupervisorPID)
		if !r.SupervisorStartedAt.IsZero() {
			sup += ", up " + formatUptime(r.SupervisorUptimeSeconds)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Mode:\t%s\n", r.Mode)
	fmt.Fprintf(tw, "Root:\t%s\n", r.Root)
	fmt.Fprintf(tw, "Supervisor:\t%s\n", sup)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tPID\tSTATE\tUPTIME\tRESTARTS\tHEALTH\tLAST EXIT")
	for _, c := range r.Components {
		pid, up := "-", "-"
		if c.Running {
			pid = strconv.Itoa(c.PID)
			up = formatUptime(c.UptimeSeconds)
		}
		state := c.State
		if state == "" {
			state = StateStopped
		}
		health := "-"
		switch {
		case c.Running && c.Healthy:
			health = "ok"
		case c.Running:
			health = "unhealthy"
		}
		last := c.LastExit
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.Name, pid, state, up, c.Restarts, health, last)
	}
	return tw.Flush()
}

// formatUptime prints whole seconds the way ps and kubectl do: the two largest units.
func formatUptime(secs int64) string {
	d := time.Duration(secs) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", secs)
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", secs/60, secs%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", secs/3600, secs%3600/60)
	default:
		return fmt.Sprintf("%dd%dh", secs/86400, secs%86400/3600)
	}
}
