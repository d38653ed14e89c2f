package sqlstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

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
// Deferred sync (SQLite): the backend may commit without waiting for the
// disk and hand the writer a sync function instead. The writer then passes
// each committed batch to a flusher goroutine and goes on with the next
// batch; the flusher makes every batch handed to it durable with one sync
// and only then answers their callers. The disk's flush time overlaps with
// the next batch's work instead of stalling the writer, and "a nil error
// means durable" still holds. Ops whose effect must not be visible before it
// is durable (MLS commits, revocations) are submitted with doSync: their
// batch commits synchronously.
//
// Pacing (SQLite): every commit writes each page it changed to the WAL (and
// the flusher's fsync writes them back), so a batch of two appends to two
// groups costs nearly as much as one of ten, and under a steady trickle of
// writes the writer would commit as soon as each one arrives: thousands of
// tiny commits a second, most of the server's CPU time. With an interval
// set, a batch that would begin less than the interval after the previous
// one began waits out the rest of it (or until paceOps writes are queued),
// so that the writes arriving meanwhile join it. A write arriving after a
// quiet spell is committed at once; under load the added wait is at most
// the interval, and a writer whose commits take longer than the interval
// never waits.
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
	stmt *Statement // when set, fn runs stmt alone; pipelined in batches
	err  error
	sync bool // commit synchronously: durable before visible
	// deferred: fn may leave writes for beforeCommit (queued appends);
	// other ops run only after beforeOp has written them.
	deferred bool
	// visible, if set, runs once the batch is committed and before done
	// is signalled, only if the op succeeded: with deferred sync before
	// the batch is durable.
	visible func()
	// complete, if set, makes the request asynchronous: the writer calls it
	// with the result instead of signalling done, and recycles the request.
	complete func(error)
	done     chan struct{}
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

	// beforeCommit, if set, runs last in every transaction, beforeOp
	// before every op that is not deferred, and afterRollback after every
	// rollback (the SQLite group cache's hooks).
	beforeCommit  func(context.Context, WriteTx) error
	beforeOp      func(context.Context, WriteTx) error
	afterRollback func()

	// sync, if set, makes every transaction committed so far durable; then
	// notifyQ feeds the notifier goroutine, which runs the batch's visible
	// callbacks and passes it on through flushQ to the flusher goroutine
	// (deferred sync).
	sync     func() error
	notifyQ  chan []*request
	flushQ   chan []*request
	flushWg  sync.WaitGroup
	notifyWg sync.WaitGroup

	// interval, if positive, paces the batches (see Pacing); full is
	// signalled when a queue holds paceAt writes (paceOps, or fewer if
	// they would not fit in one batch with the one the writer holds), and
	// stop is closed by close, ending any wait.
	interval time.Duration
	paceAt   int
	full     chan struct{}
	stop     chan struct{}

	mu     sync.RWMutex // guards closed against sends on closed queues
	closed bool
	wg     sync.WaitGroup
}

// paceOps is the number of queued writes that ends a paced wait early: a
// batch that size shares its commit widely enough.
const paceOps = 64

// maxRetries bounds how often an op alone is retried after a retryable
// failure (deadlock, serialization failure, busy).
const maxRetries = 5

// FlushGroup bounds the writes the notifier merges into one group for the
// flusher, in batches of maxBatch writes. The flusher takes a group only
// when it is ready to sync it (the channel between them is unbuffered), so
// a group holds everything committed during the previous sync: one fsync
// per group, however many small batches the writer committed meanwhile,
// and a slow fsync does not stop the writer (nor the pushes it makes
// visible) until a group is full. At most UnsyncedBatches*maxBatch
// committed writes are not yet synced at any time: the group the flusher
// is syncing, the notifier's, and the writer's batch.
const FlushGroup = 32

// UnsyncedBatches bounds the committed but unsynced writes, in batches of
// maxBatch writes (see FlushGroup).
const UnsyncedBatches = 2*FlushGroup + 1

// newWriter starts n writer goroutines. sync, if not nil, turns on deferred
// sync (only with n == 1). interval, if positive, paces the batches (see
// Pacing).
func newWriter(b Backend, n, maxBatch int, sync func() error, interval time.Duration) *writer {
	w := &writer{b: b, maxBatch: maxBatch, seed: maphash.MakeSeed(), sync: sync,
		interval: interval, paceAt: min(paceOps, maxBatch-1), full: make(chan struct{}, 1), stop: make(chan struct{})}
	if sync != nil {
		w.flushQ = make(chan []*request) // unbuffered: see FlushGroup
		w.flushWg.Add(1)
		go w.flusher()
		w.notifyQ = make(chan []*request) // unbuffered: see FlushGroup
		w.notifyWg.Add(1)
		go w.notifier()
	}
	for i := 0; i < n; i++ {
		q := make(chan *request, maxBatch)
		w.queues = append(w.queues, q)
		w.wg.Add(1)
		go w.loop(q)
	}
	return w
}

// do runs fn in a batch on the writer chosen by key and waits until it is
// durable. If ctx ends first, do returns ctx's error; the op may still
// commit.
func (w *writer) do(ctx context.Context, key string, fn op) error {
	return w.submit(ctx, key, fn, false)
}

// doDeferred is do for an op that may leave writes to the beforeCommit
// hook (with the group cache: a queued append).
// visible, if not nil, runs on success once the op's batch is committed,
// before doDeferred returns; with deferred sync that is before the batch
// is durable. It may also run after doDeferred has returned ctx's error.
func (w *writer) doDeferred(ctx context.Context, key string, fn op, visible func()) error {
	return w.submitRequest(ctx, key, fn, false, true, nil, visible)
}

// doSync is do for ops whose effect must not be visible before it is
// durable: their batch commits synchronously, even with deferred sync.
func (w *writer) doSync(ctx context.Context, key string, fn op) error {
	return w.submit(ctx, key, fn, true)
}

// doStatement runs a one-statement write; batches send such writes to the
// database together when the backend pipelines.
func (w *writer) doStatement(ctx context.Context, key string, st *Statement) error {
	return w.submit(ctx, key, statementOp(st), false, st)
}

// statementOp is the op that runs st alone.
func statementOp(st *Statement) op {
	return func(ctx context.Context, tx *batchTx) error {
		out, err := st.Result(tx.QueryRow(ctx, st.Query, st.Args...))
		if err != nil {
			return err
		}
		return out
	}
}

func (w *writer) submit(ctx context.Context, key string, fn op, sync bool, stmts ...*Statement) error {
	var st *Statement
	if len(stmts) > 0 {
		st = stmts[0]
	}
	return w.submitRequest(ctx, key, fn, sync, false, st, nil)
}

// doAsync queues fn like doDeferred (deferred says whether fn may leave
// writes to beforeCommit) and returns at once; complete is called once
// with the op's result, on a writer goroutine, once the op is durable, or
// at once if the writer is closed. It must not block.
func (w *writer) doAsync(key string, fn op, deferred bool, st *Statement, visible func(), complete func(error)) {
	r := requestPool.Get().(*request)
	r.fn, r.err, r.sync, r.deferred, r.stmt, r.visible, r.complete = fn, nil, false, deferred, st, visible, complete
	q := w.queue(key)
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		complete(errClosed())
		return
	}
	select {
	case q <- r:
		w.mu.RUnlock()
		w.queued(q)
	default:
		// The queue is full: wait on another goroutine, so that the
		// caller (a connection's reader) is not held up.
		w.mu.RUnlock()
		go func() {
			w.mu.RLock()
			defer w.mu.RUnlock()
			if w.closed {
				complete(errClosed())
				return
			}
			q <- r
			w.queued(q)
		}()
	}
}

// queued ends a paced wait once q holds paceAt writes.
func (w *writer) queued(q chan *request) {
	if w.interval > 0 && len(q) >= w.paceAt {
		select {
		case w.full <- struct{}{}:
		default:
		}
	}
}

// queue returns the queue of the writer that owns key.
func (w *writer) queue(key string) chan *request {
	if len(w.queues) > 1 {
		return w.queues[maphash.String(w.seed, key)%uint64(len(w.queues))]
	}
	return w.queues[0]
}

// finish hands a request's result to its submitter.
func finish(r *request) {
	if r.complete == nil {
		r.done <- struct{}{}
		return
	}
	complete, err := r.complete, r.err
	r.fn, r.err, r.stmt, r.visible, r.complete = nil, nil, nil, nil, nil
	requestPool.Put(r)
	complete(err)
}

func (w *writer) submitRequest(ctx context.Context, key string, fn op, sync, deferred bool, st *Statement, visible func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := requestPool.Get().(*request)
	r.fn, r.err, r.sync, r.deferred, r.stmt, r.visible, r.complete = fn, nil, sync, deferred, st, visible, nil
	q := w.queue(key)
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed()
	}
	select {
	case q <- r:
		w.mu.RUnlock()
		w.queued(q)
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-r.done:
		err := r.err
		r.fn, r.err, r.stmt, r.visible = nil, nil, nil, nil
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
	close(w.stop)
	w.mu.Unlock()
	w.wg.Wait()
	if w.notifyQ != nil {
		close(w.notifyQ)
		w.notifyWg.Wait()
	}
	if w.flushQ != nil {
		close(w.flushQ)
		w.flushWg.Wait()
	}
}

// loop is one writer goroutine.
func (w *writer) loop(q chan *request) {
	defer w.wg.Done()
	batch := make([]*request, 0, w.maxBatch)
	var began time.Time // when the previous batch began
	var timer *time.Timer
	for r := range q {
		batch = append(batch[:0], r)
		if w.interval > 0 {
			if wait := w.interval - time.Since(began); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				w.pace(q, timer)
			}
			began = time.Now()
		}
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
		if w.run(batch) {
			// Committed without waiting for the disk: the notifier and
			// then the flusher take it from here.
			w.notifyQ <- append([]*request(nil), batch...)
		} else {
			for _, r := range batch {
				if r.visible != nil && r.err == nil {
					r.visible()
				}
				finish(r)
			}
		}
		clear(batch)
	}
}

// pace waits until timer fires, q holds paceAt writes, or the writer is
// closed.
func (w *writer) pace(q chan *request, timer *time.Timer) {
	select {
	case <-w.full: // left by a batch that did not wait
	default:
	}
	if len(q) < w.paceAt {
		select {
		case <-timer.C:
			return
		case <-w.full:
		case <-w.stop:
		}
	}
	timer.Stop()
}

// notifier runs the visible callbacks of committed batches (pushing new
// group entries to online members while the disk flushes) and merges the
// batches into groups for the flusher (see FlushGroup). It keeps this work
// off the single writer goroutine.
func (w *writer) notifier() {
	defer w.notifyWg.Done()
	var group []*request
	in := w.notifyQ
	for in != nil || len(group) > 0 {
		recv := in
		if len(group) >= (FlushGroup-1)*w.maxBatch {
			recv = nil // the group is full: wait for the flusher
		}
		var out chan []*request
		if len(group) > 0 {
			out = w.flushQ
		}
		select {
		case b, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			for _, r := range b {
				if r.visible != nil && r.err == nil {
					r.visible()
				}
			}
			group = append(group, b...)
		case out <- group:
			group = nil
		}
	}
}

// flusher makes committed batches durable, many per sync, and answers their
// callers.
func (w *writer) flusher() {
	defer w.flushWg.Done()
	var pending [][]*request
	for b := range w.flushQ {
		pending = append(pending[:0], b)
	more:
		for {
			select {
			case b, ok := <-w.flushQ:
				if !ok {
					break more
				}
				pending = append(pending, b)
			default:
				break more
			}
		}
		err := w.sync()
		for _, b := range pending {
			for _, r := range b {
				if err != nil && r.err == nil {
					r.err = fmt.Errorf("failed to make the write durable: %w", err)
				}
				finish(r)
			}
		}
		clear(pending)
	}
}

// run commits a batch, falling back to one transaction per op if the batch
// as a whole fails. It reports whether the batch still needs the flusher
// (deferred sync on and not committed synchronously).
func (w *writer) run(batch []*request) (needsSync bool) {
	ctx := context.Background()
	syncCommit := w.sync == nil
	for _, r := range batch {
		syncCommit = syncCommit || r.sync
	}
	if w.runBatch(ctx, batch, syncCommit) {
		return !syncCommit
	}
	for _, r := range batch {
		r.err = w.runAlone(ctx, r.fn, syncCommit)
	}
	return !syncCommit
}

// runBatch runs all ops in one transaction. It reports false, after rolling
// back, if the batch must be redone op by op.
func (w *writer) runBatch(ctx context.Context, batch []*request, syncCommit bool) bool {
	wtx, err := w.b.BeginWrite(ctx, syncCommit)
	if err != nil {
		return false
	}
	tx := &batchTx{WriteTx: wtx}
	pipe, _ := wtx.(Pipeliner)
	for i := 0; i < len(batch); {
		if pipe != nil && batch[i].stmt != nil {
			// A run of one-statement writes: one round trip.
			j := i
			for j < len(batch) && batch[j].stmt != nil {
				j++
			}
			stmts := make([]Statement, 0, j-i)
			for _, r := range batch[i:j] {
				stmts = append(stmts, *r.stmt)
			}
			outs, err := pipe.ExecPipeline(ctx, stmts)
			if err != nil {
				w.rollback(ctx, wtx)
				return false
			}
			for k := i; k < j; k++ {
				batch[k].err = outs[k-i]
			}
			i = j
			continue
		}
		r := batch[i]
		i++
		if w.beforeOp != nil && !r.deferred {
			if err := w.beforeOp(ctx, wtx); err != nil {
				w.rollback(ctx, wtx)
				return false
			}
		}
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
func (w *writer) runAlone(ctx context.Context, fn op, syncCommit bool) error {
	var last error
	for attempt := 0; attempt < maxRetries; attempt++ {
		wtx, err := w.b.BeginWrite(ctx, syncCommit)
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
