package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how patiently a failed transfer is tried
// again: exponential backoff with full jitter between BaseWait and MaxWait.
type RetryPolicy struct {
	Retries  int           // tries after the first
	BaseWait time.Duration // default 500ms
	MaxWait  time.Duration // default 30s
	Logger   *slog.Logger
	// sleep waits; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// WithRetry returns d with each Put, Has and Remove retried under p.
// Permanent errors and a cancelled context are returned at once.
func WithRetry(d Destination, p RetryPolicy) Destination {
	if p.BaseWait <= 0 {
		p.BaseWait = 500 * time.Millisecond
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 30 * time.Second
	}
	if p.MaxWait < p.BaseWait {
		p.BaseWait = p.MaxWait
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.sleep == nil {
		p.sleep = sleepCtx
	}
	return &retrying{Destination: d, p: p}
}

type retrying struct {
	Destination
	p RetryPolicy
}

func (r *retrying) Unwrap() Destination { return r.Destination }

func (r *retrying) Put(ctx context.Context, name string, src File) error {
	return r.do(ctx, "put "+name, func() error { return r.Destination.Put(ctx, name, src) })
}

// do runs op until it succeeds, fails permanently or runs out of tries.
func (r *retrying) do(ctx context.Context, what string, op func() error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if err = op(); err == nil || IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		if attempt >= r.p.Retries {
			if r.p.Retries > 0 {
				return fmt.Errorf("%w (gave up after %d tries)", err, attempt+1)
			}
			return err
		}
		wait := r.p.BaseWait << min(attempt, 30)
		if wait <= 0 || wait > r.p.MaxWait {
			wait = r.p.MaxWait
		}
		wait = time.Duration(rand.Int64N(int64(wait)) + 1) // full jitter
		r.p.Logger.Warn("deliver: retrying", "destination", r.String(), "op", what, "attempt", attempt+1, "wait", wait.Round(time.Millisecond).String(), "error", err.Error())
		if serr := r.p.sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// As finds the capability T in d or in a destination it wraps.
func As[T any](d Destination) (T, bool) {
	for {
		if t, ok := d.(T); ok {
			return t, true
		}
		u, ok := d.(interface{ Unwrap() Destination })
		if !ok {
			var zero T
			return zero, false
		}
		d = u.Unwrap()
	}
}

// Do runs op under d's retry policy when d has one.
func Do(ctx context.Context, d Destination, what string, op func() error) error {
	if r, ok := d.(*retrying); ok {
		return r.do(ctx, what, op)
	}
	return op()
}
