package systemd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// Manager is the part of systemd's D-Bus API kubestrap uses. Unit arguments are unit names
// ("etcd.service"); the methods that start or stop wait for systemd's job to finish and fail
// with the unit's name when the job does not succeed.
type Manager interface {
	// Reload is `systemctl daemon-reload`.
	Reload(ctx context.Context) error
	// EnableAndStart enables units and starts those not running, in order.
	EnableAndStart(ctx context.Context, units []string) error
	// EnableAndRestart enables units and restarts them (starting those not running), in order.
	EnableAndRestart(ctx context.Context, units []string) error
	// StopAndDisable stops units, in order, and disables them.
	StopAndDisable(ctx context.Context, units []string) error
	// Changed returns the units whose files changed on disk since systemd loaded them; call it
	// before Reload, which makes them current.
	Changed(ctx context.Context, units []string) ([]string, error)
	Close()
}

// Start brings units up after their files were written: daemon-reload, then enable each and
// start it, or restart it when its file changed while it was loaded, so that new flags take
// effect and an unchanged running unit is left alone (init is safe to re-run).
func Start(ctx context.Context, m Manager, units []string, log io.Writer) error {
	changed, err := m.Changed(ctx, units)
	if err != nil {
		return err
	}
	fmt.Fprintln(log, "[control-plane] Reloading systemd (daemon-reload)")
	if err := m.Reload(ctx); err != nil {
		return err
	}
	for _, u := range units {
		if slices.Contains(changed, u) {
			fmt.Fprintf(log, "[control-plane] Restarting %s: its unit file changed\n", u)
			err = m.EnableAndRestart(ctx, []string{u})
		} else {
			fmt.Fprintf(log, "[control-plane] Enabling and starting %s\n", u)
			err = m.EnableAndStart(ctx, []string{u})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// DBusManager is Manager over systemd's D-Bus API.
type DBusManager struct {
	conn *sdbus.Conn
}

// NewManager connects to the system's systemd (its private socket when root, else the system
// bus).
func NewManager(ctx context.Context) (*DBusManager, error) {
	conn, err := sdbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return &DBusManager{conn: conn}, nil
}

func (m *DBusManager) Close() { m.conn.Close() }

func (m *DBusManager) Reload(ctx context.Context) error {
	if err := m.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd daemon-reload: %w", err)
	}
	return nil
}

func (m *DBusManager) EnableAndStart(ctx context.Context, units []string) error {
	return m.enableAnd(ctx, units, "start", m.conn.StartUnitContext)
}

func (m *DBusManager) EnableAndRestart(ctx context.Context, units []string) error {
	return m.enableAnd(ctx, units, "restart", m.conn.RestartUnitContext)
}

type jobFunc func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

func (m *DBusManager) enableAnd(ctx context.Context, units []string, verb string, job jobFunc) error {
	if len(units) == 0 {
		return nil
	}
	// force: replace symlinks of a previous installation that point elsewhere.
	if _, _, err := m.conn.EnableUnitFilesContext(ctx, units, false, true); err != nil {
		return fmt.Errorf("enable %v: %w", units, err)
	}
	for _, u := range units {
		if err := runJob(ctx, u, verb, job); err != nil {
			return err
		}
	}
	return nil
}

func (m *DBusManager) StopAndDisable(ctx context.Context, units []string) error {
	var errs []error
	for _, u := range units {
		errs = append(errs, runJob(ctx, u, "stop", m.conn.StopUnitContext))
	}
	if _, err := m.conn.DisableUnitFilesContext(ctx, units, false); err != nil {
		errs = append(errs, fmt.Errorf("disable %v: %w", units, err))
	}
	return errors.Join(errs...)
}

func (m *DBusManager) Changed(ctx context.Context, units []string) ([]string, error) {
	var out []string
	for _, u := range units {
		prop, err := m.conn.GetUnitPropertyContext(ctx, u, "NeedDaemonReload")
		if err != nil {
			// A unit systemd has never loaded cannot be stale; starting it loads the new file.
			continue
		}
		if stale, ok := prop.Value.Value().(bool); ok && stale {
			out = append(out, u)
		}
	}
	return out, nil
}

// runJob queues a job in "replace" mode and waits for its result ("done" on success; "failed",
// "timeout", "dependency", ... otherwise).
func runJob(ctx context.Context, unit, verb string, job jobFunc) error {
	ch := make(chan string, 1)
	if _, err := job(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: job %s; see 'systemctl status %s' and 'journalctl -u %s'", verb, unit, res, unit, unit)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, ctx.Err())
	}
}
