package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// writesRefused counts the writes the API server or the fence refused: conflict (the object
// changed since it was read: optimistic concurrency), not_leader (the fence).
var writesRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tcpgw_operator_writes_refused_total",
	Help: "Writes of the operator refused, by reason: conflict (the object changed since it was read), not_leader (this manager does not hold the leader election Lease).",
}, []string{"reason"})

const (
	refusedConflict  = "conflict"
	refusedNotLeader = "not_leader"
)

func init() {
	metrics.Registry.MustRegister(writesRefused)
	writesRefused.WithLabelValues(refusedConflict)
	writesRefused.WithLabelValues(refusedNotLeader)
}

// countConflict counts a reconcile that ended on a resourceVersion conflict.
func countConflict(err error) {
	if err != nil && apierrors.IsConflict(err) {
		writesRefused.WithLabelValues(refusedConflict).Inc()
	}
}

// ErrNotLeader: a write was refused because this process does not hold the leader election
// Lease (or did not hold it long enough, see LeaderFence).
var ErrNotLeader = errors.New("not the leader")

// Defaults of LeaderFence.
const (
	// DefaultFenceWindow bounds a write after the check that let it through.
	DefaultFenceWindow = time.Second
	// DefaultFenceSettle is how long a new holder of the Lease waits before its first write.
	// Settle − Window is the margin left for a write the old leader sent just before the
	// takeover to be committed before the new leader writes.
	DefaultFenceSettle = 3 * time.Second
)

// LeaderFence lets a write through only while this process holds the leader election Lease,
// as the API server has it at that moment.
//
// client-go's elector believes it leads until its renew deadline runs out, even after another
// process took the Lease (deleted by hand, or taken after the renewals failed): a deposed
// leader's controllers keep running for up to 10 s. So each write first reads the Lease
// without a cache and goes ahead only when the holder is this process, its last renewal is
// still valid, and it has held the Lease for Settle. The write then has Window to finish
// (its context deadline): a takeover after the check happens later than the check, and the
// new holder waits Settle > Window before its own first write, so the old leader's last write
// lands first. Writes also carry resourceVersion preconditions (ensureOwned, patchStatus),
// based on cache reads made before the check: one based on what the old leader read is
// refused once the new leader has written that object.
type LeaderFence struct {
	// Reader reads the Lease; it must not be a cached client (cmd/manager passes
	// mgr.GetAPIReader()).
	Reader client.Reader
	// Lease names the leader election Lease.
	Lease client.ObjectKey
	// Identity is this process's holderIdentity in the Lease.
	Identity string
	// Window and Settle: see the type. Defaults DefaultFenceWindow and DefaultFenceSettle;
	// Settle must be longer than Window.
	Window, Settle time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (f *LeaderFence) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *LeaderFence) window() time.Duration {
	if f.Window > 0 {
		return f.Window
	}
	return DefaultFenceWindow
}

func (f *LeaderFence) settle() time.Duration {
	if f.Settle > 0 {
		return f.Settle
	}
	return DefaultFenceSettle
}

// leaseHeld decides from a Lease read at now whether identity may write until now + window:
// nil, or how long to wait first (the Lease was acquired less than settle ago), or an error
// wrapping ErrNotLeader.
func leaseHeld(lease *coordinationv1.Lease, identity string, now time.Time, window, settle time.Duration) (time.Duration, error) {
	s := lease.Spec
	if s.HolderIdentity == nil || *s.HolderIdentity != identity {
		holder := ""
		if s.HolderIdentity != nil {
			holder = *s.HolderIdentity
		}
		return 0, fmt.Errorf("%w: Lease %s is held by %q", ErrNotLeader, lease.Name, holder)
	}
	if s.RenewTime == nil || s.LeaseDurationSeconds == nil {
		return 0, fmt.Errorf("%w: Lease %s has no renew time or duration", ErrNotLeader, lease.Name)
	}
	expires := s.RenewTime.Add(time.Duration(*s.LeaseDurationSeconds) * time.Second)
	if !now.Add(window).Before(expires) {
		return 0, fmt.Errorf("%w: Lease %s was last renewed at %s", ErrNotLeader, lease.Name, s.RenewTime.Format(time.RFC3339Nano))
	}
	if s.AcquireTime == nil {
		return 0, fmt.Errorf("%w: Lease %s has no acquire time", ErrNotLeader, lease.Name)
	}
	if wait := s.AcquireTime.Add(settle).Sub(now); wait > 0 {
		return wait, nil
	}
	return 0, nil
}

// guard checks the Lease (waiting out the settle time of a fresh Lease) and returns the
// context the write must use.
func (f *LeaderFence) guard(ctx context.Context) (context.Context, context.CancelFunc, error) {
	for {
		// The window starts before the read: whatever the read saw was true no earlier.
		start := f.now()
		lease := &coordinationv1.Lease{}
		if err := f.Reader.Get(ctx, f.Lease, lease); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil, fmt.Errorf("%w: Lease %s does not exist", ErrNotLeader, f.Lease.Name)
			}
			return nil, nil, fmt.Errorf("while reading the leader election Lease: %w", err)
		}
		wait, err := leaseHeld(lease, f.Identity, start, f.window(), f.settle())
		if err != nil {
			return nil, nil, err
		}
		if wait == 0 {
			wctx, cancel := context.WithDeadline(ctx, start.Add(f.window()))
			return wctx, cancel, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(wait): // the settle time of a new Lease; then check again
		}
	}
}

// Client returns c with every write (create, update, patch, delete, apply, of objects and of
// subresources) fenced; reads pass through.
func (f *LeaderFence) Client(c client.WithWatch) client.WithWatch {
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.Create(ctx, obj, opts...) })
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.Update(ctx, obj, opts...) })
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.Patch(ctx, obj, patch, opts...) })
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.Delete(ctx, obj, opts...) })
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.DeleteAllOf(ctx, obj, opts...) })
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.Apply(ctx, obj, opts...) })
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceCreateOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.SubResource(sub).Create(ctx, obj, subObj, opts...) })
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.SubResource(sub).Update(ctx, obj, opts...) })
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.SubResource(sub).Patch(ctx, obj, patch, opts...) })
		},
		SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
			return f.fenced(ctx, func(ctx context.Context) error { return c.SubResource(sub).Apply(ctx, obj, opts...) })
		},
	})
}

func (f *LeaderFence) fenced(ctx context.Context, write func(context.Context) error) error {
	wctx, cancel, err := f.guard(ctx)
	if err != nil {
		if errors.Is(err, ErrNotLeader) {
			writesRefused.WithLabelValues(refusedNotLeader).Inc()
		}
		return err
	}
	defer cancel()
	return write(wctx)
}
