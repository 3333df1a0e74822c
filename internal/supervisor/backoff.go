package supervisor

import (
	"math"
	"time"
)

const (
	// initialBackoff is the first restart delay; it doubles with every crash in a row.
	initialBackoff = time.Second
	// backoffReset is how long a component must stay up for its next crash to count as the
	// first again: a component that ran for a minute is not crash-looping.
	backoffReset = time.Minute
)

// backoffDelay is the delay before restart number n+1 of a component that crashed n+1 times in a
// row: base·2ⁿ, capped at limit (no cap when limit <= 0), safe from overflow for any n.
func backoffDelay(n int, base, limit time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	if limit <= 0 {
		limit = math.MaxInt64
	}
	if n < 0 {
		n = 0
	}
	d := base
	for i := 0; i < n; i++ {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// backoff tracks one component's consecutive crashes.
type backoff struct {
	base, limit, reset time.Duration
	failures           int
}

// next returns the delay before restarting a component that just exited after running for
// uptime.
func (b *backoff) next(uptime time.Duration) time.Duration {
	if uptime >= b.reset {
		b.failures = 0
	}
	d := backoffDelay(b.failures, b.base, b.limit)
	b.failures++
	return d
}
