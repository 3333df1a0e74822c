package supervisor

import (
	"math"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n           int
		base, limit time.Duration
		want        time.Duration
	}{
		{n: 0, base: time.Second, limit: 30 * time.Second, want: time.Second},
		{n: 1, base: time.Second, limit: 30 * time.Second, want: 2 * time.Second},
		{n: 2, base: time.Second, limit: 30 * time.Second, want: 4 * time.Second},
		{n: 4, base: time.Second, limit: 30 * time.Second, want: 16 * time.Second},
		{n: 5, base: time.Second, limit: 30 * time.Second, want: 30 * time.Second},
		{n: 6, base: time.Second, limit: 30 * time.Second, want: 30 * time.Second},
		{n: 1000, base: time.Second, limit: 30 * time.Second, want: 30 * time.Second},
		{n: math.MaxInt, base: time.Second, limit: 30 * time.Second, want: 30 * time.Second},
		{n: -1, base: time.Second, limit: 30 * time.Second, want: time.Second},
		{n: 3, base: time.Second, limit: 8 * time.Second, want: 8 * time.Second},
		{n: 0, base: time.Second, limit: 500 * time.Millisecond, want: 500 * time.Millisecond},
		{n: 200, base: time.Second, limit: 0, want: math.MaxInt64}, // no cap, no overflow
		{n: 3, base: 0, limit: time.Second, want: 0},
	} {
		if got := backoffDelay(tc.n, tc.base, tc.limit); got != tc.want {
			t.Errorf("backoffDelay(%d, %s, %s) = %s, want %s", tc.n, tc.base, tc.limit, got, tc.want)
		}
	}
}

func TestBackoffResetsAfterUptime(t *testing.T) {
	t.Parallel()
	b := backoff{base: time.Second, limit: 30 * time.Second, reset: time.Minute}
	for _, step := range []struct {
		uptime time.Duration
		want   time.Duration
	}{
		{0, time.Second},
		{100 * time.Millisecond, 2 * time.Second},
		{59 * time.Second, 4 * time.Second},
		{time.Second, 8 * time.Second},
		{time.Minute, time.Second}, // it stayed up: not a crash loop any more
		{0, 2 * time.Second},
		{2 * time.Hour, time.Second},
	} {
		if got := b.next(step.uptime); got != step.want {
			t.Errorf("after %s up: delay %s, want %s", step.uptime, got, step.want)
		}
	}
}
