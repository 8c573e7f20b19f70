package events

import "context"

// Hooks are a writer's own events for the transaction it runs under a ctx
// from WithHooks: the bridge calls Before ahead of the transaction's
// changes and After behind them, with the ctx it was given. Under
// interceptor.WithEventLog that is before COMMIT, with the transaction's
// eventlog.Batch in ctx, so that the events they notify are logged in the
// transaction and exist if and only if it commits; their error then fails
// the commit like a change's. Either may be nil.
//
// The workflow uses them for WORKFLOW_STARTED (with its first write) and
// WORKFLOW_COMPLETED or WORKFLOW_FAILED (with its last).
type Hooks struct {
	Before, After func(ctx context.Context) error
}

type hooksKey struct{}

// WithHooks returns ctx carrying h, for the ctx of a transaction
// (db.WithContext(ctx).Transaction): the interceptor hands the
// transaction's ctx to the bridge at its commit.
func WithHooks(ctx context.Context, h Hooks) context.Context {
	return context.WithValue(ctx, hooksKey{}, h)
}

func hooksFrom(ctx context.Context) Hooks {
	h, _ := ctx.Value(hooksKey{}).(Hooks)
	return h
}
