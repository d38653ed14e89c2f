package sqlstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/parley-im/parley/server/store"
)

// Group commit.
//
// Every write is a function (an op) run inside a transaction. A writer
// goroutine takes the first waiting op, then every op already queued behind
// it (up to maxBatch), runs them all in ONE transaction and commits once: one
// fsync for the whole batch. Only after COMMIT returns does it answer the
// callers, so a nil error means durable.
//
// SQLite runs exactly one writer goroutine: it is the only code that writes
// to the database file, which is what SQLite wants (one writer, many
// readers) and removes all write-write races between ops. PostgreSQL may run
// several writers, each routing ops by a shard key (the group or device the
// op locks first) so that ops on the same row stay in one writer's order.
//
// Ops follow one rule so that one op's failure cannot spoil its batch: an op
// returns a store error (ErrNotFound, ErrEpochConflict ...) only before its
// first write. The writer checks this: it counts the rows each op changed.
// If an op fails after writing, or with a database error, the whole batch is
// rolled back and each of its ops is run again alone in its own transaction,
// where a failure rolls back only that op.

// op is one write, run inside a batch transaction.
type op func(ctx context.Context, tx *batchTx) error

// request is one op waiting for its batch to commit.
type request struct {
	fn   op
	err  error
	done chan struct{}
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// batchTx is the transaction an op sees; it records whether the op wrote.
type batchTx struct {
	WriteTx
	wrote bool
}

// Exec runs a statement and records whether it changed anything.
func (t *batchTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	n, err := t.WriteTx.Exec(ctx, q, args...)
	if n > 0 || err != nil {
		t.wrote = true
	}
	return n, err
}

// writer is the set of group-commit goroutines.
type writer struct {
	b        Backend
	queues   []chan *request
	maxBatch int
	seed     maphash.Seed

	// beforeCommit, if set, runs last in every transaction, and
	// afterRollback after every rollback (the SQLite group cache's hooks).
	beforeCommit  func(context.Context, WriteTx) error
	afterRollback func()

	mu     sync.RWMutex // guards closed against sends on closed queues
	closed bool
	wg     sync.WaitGroup
}

// maxRetries bounds how often an op alone is retried after a retryable
// failure (deadlock, serialization failure, busy).
const maxRetries = 5

func newWriter(b Backend, n, maxBatch int) *writer {
	w := &writer{b: b, maxBatch: maxBatch, seed: maphash.MakeSeed()}
	for i := 0; i < n; i++ {
		q := make(chan *request, maxBatch)
		w.queues = append(w.queues, q)
		w.wg.Add(1)
		go w.loop(q)
	}
	return w
}

// do runs fn in a batch on the writer chosen by key and waits for the commit.
// If ctx ends first, do returns ctx's error; the op may still commit.
func (w *writer) do(ctx context.Context, key string, fn op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := requestPool.Get().(*request)
	r.fn, r.err = fn, nil
	q := w.queues[0]
	if len(w.queues) > 1 {
		q = w.queues[maphash.String(w.seed, key)%uint64(len(w.queues))]
	}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed()
	}
	select {
	case q <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-r.done:
		err := r.err
		r.fn, r.err = nil, nil
		requestPool.Put(r)
		return err
	case <-ctx.Done():
		// The writer still owns r and will signal done into its buffer;
		// r is not returned to the pool.
		return ctx.Err()
	}
}

// close lets the writers finish the queued ops and stops them.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	for _, q := range w.queues {
		close(q)
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// loop is one writer goroutine.
func (w *writer) loop(q chan *request) {
	defer w.wg.Done()
	batch := make([]*request, 0, w.maxBatch)
	for r := range q {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < w.maxBatch {
			select {
			case r, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.run(batch)
		for i, r := range batch {
			r.done <- struct{}{}
			batch[i] = nil
		}
	}
}

// run commits a batch, falling back to one transaction per op if the batch
// as a whole fails.
func (w *writer) run(batch []*request) {
	ctx := context.Background()
	if w.runBatch(ctx, batch) {
		return
	}
	for _, r := range batch {
		r.err = w.runAlone(ctx, r.fn)
	}
}

// runBatch runs all ops in one transaction. It reports false, after rolling
// back, if the batch must be redone op by op.
func (w *writer) runBatch(ctx context.Context, batch []*request) bool {
	wtx, err := w.b.BeginWrite(ctx)
	if err != nil {
		return false
	}
	tx := &batchTx{WriteTx: wtx}
	for _, r := range batch {
		tx.wrote = false
		err := r.fn(ctx, tx)
		if err != nil && (tx.wrote || !isLogical(err)) {
			w.rollback(ctx, wtx)
			return false
		}
		r.err = err
	}
	if err := w.commit(ctx, wtx); err != nil {
		w.rollback(ctx, wtx)
		return false
	}
	return true
}

// commit runs the beforeCommit hook and commits.
func (w *writer) commit(ctx context.Context, wtx WriteTx) error {
	if w.beforeCommit != nil {
		if err := w.beforeCommit(ctx, wtx); err != nil {
			return err
		}
	}
	return wtx.Commit(ctx)
}

// rollback rolls back and runs the afterRollback hook.
func (w *writer) rollback(ctx context.Context, wtx WriteTx) {
	_ = wtx.Rollback(ctx)
	if w.afterRollback != nil {
		w.afterRollback()
	}
}

// runAlone runs one op in its own transaction, retrying retryable failures.
func (w *writer) runAlone(ctx context.Context, fn op) error {
	var last error
	for attempt := 0; attempt < maxRetries; attempt++ {
		wtx, err := w.b.BeginWrite(ctx)
		if err != nil {
			last = fmt.Errorf("failed to begin transaction: %w", err)
			if w.b.IsRetryable(err) {
				continue
			}
			return last
		}
		tx := &batchTx{WriteTx: wtx}
		if err := fn(ctx, tx); err != nil {
			w.rollback(ctx, wtx)
			if w.b.IsRetryable(err) {
				last = err
				continue
			}
			return err
		}
		if err := w.commit(ctx, wtx); err != nil {
			w.rollback(ctx, wtx)
			last = fmt.Errorf("failed to commit: %w", err)
			if w.b.IsRetryable(err) {
				continue
			}
			return last
		}
		return nil
	}
	return last
}

// errClosed is returned by writes after Close.
func errClosed() error { return store.ErrClosed }
