package deliver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// flaky fails its first n Puts with err.
type flaky struct {
	n     int
	err   error
	calls int
}

func (f *flaky) Put(ctx context.Context, name string, src File) error {
	f.calls++
	if f.calls <= f.n {
		return f.err
	}
	return nil
}
func (f *flaky) String() string                                { return "flaky" }
func (f *flaky) Remove(ctx context.Context, name string) error { return nil }

func TestWithRetry(t *testing.T) {
	transient := errors.New("connection reset by peer")
	tests := []struct {
		name      string
		fails     int
		err       error
		retries   int
		wantCalls int
		wantErr   bool
	}{
		{"succeeds at once", 0, nil, 5, 1, false},
		{"transient then success", 3, transient, 5, 4, false},
		{"gives up", 10, transient, 2, 3, true},
		{"permanent is not retried", 10, Permanent(errors.New("access denied")), 5, 1, true},
		{"no retries", 1, transient, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{n: tt.fails, err: tt.err}
			var waits []time.Duration
			d := WithRetry(f, RetryPolicy{Retries: tt.retries, BaseWait: 100 * time.Millisecond, MaxWait: time.Second,
				sleep: func(_ context.Context, w time.Duration) error { waits = append(waits, w); return nil }})
			err := d.Put(context.Background(), "x", File{})
			if (err != nil) != tt.wantErr || f.calls != tt.wantCalls {
				t.Fatalf("err %v after %d calls; want error=%v after %d", err, f.calls, tt.wantErr, tt.wantCalls)
			}
			for i, w := range waits {
				if ceil := min(100*time.Millisecond<<i, time.Second); w <= 0 || w > ceil {
					t.Fatalf("wait %d = %v, want in (0, %v]", i, w, ceil)
				}
			}
			if tt.wantErr && tt.retries > 0 && !IsPermanent(tt.err) && !strings.Contains(err.Error(), "gave up after") {
				t.Fatalf("error %q does not say it gave up", err)
			}
		})
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	f := &flaky{n: 100, err: errors.New("timeout")}
	ctx, cancel := context.WithCancel(context.Background())
	d := WithRetry(f, RetryPolicy{Retries: 100, sleep: func(context.Context, time.Duration) error { cancel(); return context.Canceled }})
	if err := d.Put(ctx, "x", File{}); err == nil || f.calls != 1 {
		t.Fatalf("err %v after %d calls: want the error after one call", err, f.calls)
	}
}

func TestAsFindsWrappedCapability(t *testing.T) {
	d := WithRetry(&flaky{}, RetryPolicy{})
	if _, ok := As[Remover](d); !ok {
		t.Fatal("Remover of the wrapped destination not found")
	}
	if _, ok := As[Presigner](d); ok {
		t.Fatal("a capability the destination lacks was found")
	}
}
