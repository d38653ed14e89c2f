package sqlstore

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/server/store"
)

// fakeBackend records transactions; ops drive it through Exec("write") (one
// row changed) and Exec("retryable") (a retryable failure).
type fakeBackend struct {
	mu                         sync.Mutex
	begins, commits, rollbacks int
	syncBegins                 int      // transactions begun with syncCommit
	pipelines                  []int    // sizes of the pipelines run
	failPipeline               bool     // the next pipeline fails
	committed                  []string // labels written by committed transactions
}

var errRetry = errors.New("fake: deadlock")

type fakeTx struct {
	b       *fakeBackend
	pending []string
}

func (b *fakeBackend) BeginWrite(_ context.Context, syncCommit bool) (WriteTx, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.begins++
	if syncCommit {
		b.syncBegins++
	}
	return &fakeTx{b: b}, nil
}
func (b *fakeBackend) Reader() Querier                               { return nil }
func (b *fakeBackend) IsUnique(error) bool                           { return false }
func (b *fakeBackend) IsRetryable(err error) bool                    { return errors.Is(err, errRetry) }
func (b *fakeBackend) Close() error                                  { return nil }
func (t *fakeTx) QueryRow(_ context.Context, q string, _ ...any) Row { return t.queryRow(q) }
func (t *fakeTx) Query(context.Context, string, ...any) (Rows, error) {
	return nil, errors.New("fake: no queries")
}

func (t *fakeTx) Exec(_ context.Context, q string, args ...any) (int64, error) {
	if q == "retryable" {
		return 0, errRetry
	}
	t.pending = append(t.pending, args[0].(string))
	return 1, nil
}

func (t *fakeTx) Commit(context.Context) error {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	t.b.commits++
	t.b.committed = append(t.b.committed, t.pending...)
	return nil
}

func (t *fakeTx) Rollback(context.Context) error {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	t.b.rollbacks++
	return nil
}

func write(label string) op {
	return func(ctx context.Context, tx *batchTx) error {
		_, err := tx.Exec(ctx, "write", label)
		return err
	}
}

// runQueued runs ops as one batch: the writer is held busy by a first op
// until all of them are queued.
func runQueued(t *testing.T, w *writer, ops []op) []error {
	t.Helper()
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.do(context.Background(), "", func(ctx context.Context, tx *batchTx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	errs := make([]error, len(ops))
	for i, fn := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.do(context.Background(), "", fn)
		}()
	}
	for len(w.queues[0]) < len(ops) {
		runtime.Gosched() // wait until every op is queued behind the busy one
	}
	close(release)
	wg.Wait()
	return errs
}

func TestWriterBatches(t *testing.T) {
	b := &fakeBackend{}
	w := newWriter(b, 1, 64, nil, 0)
	defer w.close()
	var ops []op
	for i := 0; i < 10; i++ {
		ops = append(ops, write("w"))
	}
	for _, err := range runQueued(t, w, ops) {
		if err != nil {
			t.Fatal(err)
		}
	}
	// One transaction for the blocking op, one for the ten queued behind it.
	if b.begins != 2 || b.commits != 2 || len(b.committed) != 10 {
		t.Fatalf("begins %d commits %d written %d; want 2, 2, 10", b.begins, b.commits, len(b.committed))
	}
}

// TestWriterIsolatesFailures: a store error before any write leaves the
// batch alone; an error after a write rolls the batch back and reruns each
// op in its own transaction, so only the failing op is lost.
func TestWriterIsolatesFailures(t *testing.T) {
	b := &fakeBackend{}
	w := newWriter(b, 1, 64, nil, 0)
	defer w.close()
	cleanFail := func(ctx context.Context, tx *batchTx) error { return store.ErrNotFound }
	dirtyFail := func(ctx context.Context, tx *batchTx) error {
		if _, err := tx.Exec(ctx, "write", "dirty"); err != nil {
			return err
		}
		return store.ErrQueueFull
	}
	errs := runQueued(t, w, []op{write("a"), cleanFail, write("b")})
	if errs[0] != nil || !errors.Is(errs[1], store.ErrNotFound) || errs[2] != nil {
		t.Fatalf("clean failure: %v", errs)
	}
	if b.rollbacks != 0 || b.commits != 2 {
		t.Fatalf("clean failure split the batch: %d rollbacks, %d commits", b.rollbacks, b.commits)
	}

	*b = fakeBackend{}
	errs = runQueued(t, w, []op{write("a"), dirtyFail, write("b")})
	if errs[0] != nil || !errors.Is(errs[1], store.ErrQueueFull) || errs[2] != nil {
		t.Fatalf("dirty failure: %v", errs)
	}
	for _, l := range b.committed {
		if l == "dirty" {
			t.Fatal("the failed op's write was committed")
		}
	}
	if len(b.committed) != 2 {
		t.Fatalf("committed %v, want a and b", b.committed)
	}
}

func TestWriterRetries(t *testing.T) {
	b := &fakeBackend{}
	w := newWriter(b, 1, 64, nil, 0)
	defer w.close()
	tries := 0
	err := w.do(context.Background(), "", func(ctx context.Context, tx *batchTx) error {
		tries++
		if tries < 3 {
			_, err := tx.Exec(ctx, "retryable")
			return err
		}
		_, err := tx.Exec(ctx, "write", "ok")
		return err
	})
	if err != nil || tries != 3 {
		t.Fatalf("err %v after %d tries, want success on the third", err, tries)
	}
	err = w.do(context.Background(), "", func(ctx context.Context, tx *batchTx) error {
		_, err := tx.Exec(ctx, "retryable")
		return err
	})
	if !errors.Is(err, errRetry) {
		t.Fatalf("endless retryable failure: %v", err)
	}
}

func TestWriterClosed(t *testing.T) {
	w := newWriter(&fakeBackend{}, 2, 8, nil, 0)
	w.close()
	w.close()
	if err := w.do(context.Background(), "k", write("x")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("do after close: %v", err)
	}
}

// TestDeferredSync: with deferred sync, a write is answered only after the
// sync that follows its commit, and a failed sync fails it; a doSync write
// commits synchronously and needs no sync.
func TestDeferredSync(t *testing.T) {
	b := &fakeBackend{}
	entered := make(chan struct{}, 8)
	release := make(chan error)
	w := newWriter(b, 1, 64, func() error {
		entered <- struct{}{}
		return <-release
	}, 0)
	defer func() {
		go func() {
			for range entered {
				release <- nil
			}
		}()
		w.close()
		close(entered)
	}()

	done := make(chan error, 1)
	go func() { done <- w.do(context.Background(), "", write("a")) }()
	<-entered // committed, now syncing
	select {
	case err := <-done:
		t.Fatalf("write answered before its sync finished: %v", err)
	default:
	}
	b.mu.Lock()
	if b.commits != 1 || b.syncBegins != 0 {
		t.Fatalf("commits %d, sync begins %d; want 1 and 0", b.commits, b.syncBegins)
	}
	b.mu.Unlock()
	release <- nil
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}

	go func() { done <- w.do(context.Background(), "", write("b")) }()
	<-entered
	release <- errors.New("disk on fire")
	if err := <-done; err == nil {
		t.Fatal("write succeeded although its sync failed")
	}

	// doSync: committed synchronously, answered without the flusher.
	if err := w.doSync(context.Background(), "", write("c")); err != nil {
		t.Fatalf("doSync: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.syncBegins != 1 {
		t.Fatalf("doSync began %d synchronous transactions, want 1", b.syncBegins)
	}
	select {
	case <-entered:
		t.Fatal("doSync went through the flusher")
	default:
	}
}

// fakeRow is a row holding one label.
type fakeRow struct{ label string }

func (r fakeRow) Scan(dest ...any) error {
	*dest[0].(*string) = r.label
	return nil
}

// QueryRow returns the query text as the row, so that a Statement run alone
// sees what it would have seen in a pipeline.
func (t *fakeTx) queryRow(q string) Row { return fakeRow{q} }

// ExecPipeline makes fakeTx a Pipeliner.
func (t *fakeTx) ExecPipeline(_ context.Context, stmts []Statement) ([]error, error) {
	t.b.mu.Lock()
	fail := t.b.failPipeline
	t.b.failPipeline = false
	t.b.pipelines = append(t.b.pipelines, len(stmts))
	t.b.mu.Unlock()
	if fail {
		return nil, errors.New("fake: connection lost")
	}
	outs := make([]error, len(stmts))
	for i, st := range stmts {
		out, err := st.Result(fakeRow{st.Query})
		if err != nil {
			return nil, err
		}
		outs[i] = out
		if out == nil {
			t.pending = append(t.pending, st.Query)
		}
	}
	return outs, nil
}

// labelStatement is a one-statement write whose outcome is a store error
// when its label is "refuse".
func labelStatement(label string, seen *string) *Statement {
	return &Statement{Query: label, Result: func(r Row) (error, error) {
		if err := r.Scan(seen); err != nil {
			return nil, err
		}
		if *seen == "refuse" {
			return store.ErrNotMember, nil
		}
		return nil, nil
	}}
}

// TestWriterPipelines: a run of one-statement writes goes to the backend as
// one pipeline, each gets its own outcome, and a failed pipeline falls back
// to one transaction per write.
func TestWriterPipelines(t *testing.T) {
	b := &fakeBackend{}
	w := newWriter(b, 1, 64, nil, 0)
	defer w.close()
	labels := []string{"a", "refuse", "b"}
	seen := make([]string, len(labels))
	run := func() []error {
		errs := make([]error, len(labels))
		release := make(chan struct{})
		started := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.do(context.Background(), "", func(ctx context.Context, tx *batchTx) error {
				close(started)
				<-release
				return nil
			})
		}()
		<-started
		for i, l := range labels {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = w.doStatement(context.Background(), "", labelStatement(l, &seen[i]))
			}()
		}
		for len(w.queues[0]) < len(labels) {
			runtime.Gosched()
		}
		close(release)
		wg.Wait()
		return errs
	}
	check := func(errs []error) {
		t.Helper()
		if errs[0] != nil || !errors.Is(errs[1], store.ErrNotMember) || errs[2] != nil {
			t.Fatalf("outcomes %v", errs)
		}
		for i, l := range labels {
			if seen[i] != l {
				t.Fatalf("statement %d saw %q", i, seen[i])
			}
		}
	}
	check(run())
	if len(b.pipelines) != 1 || b.pipelines[0] != 3 || len(b.committed) != 2 {
		t.Fatalf("pipelines %v, committed %v; want one pipeline of 3 and a, b committed", b.pipelines, b.committed)
	}

	*b = fakeBackend{failPipeline: true}
	clear(seen)
	check(run())
	// The failed pipeline is redone one statement per transaction.
	if len(b.pipelines) != 1 || b.rollbacks == 0 {
		t.Fatalf("pipelines %v, rollbacks %d", b.pipelines, b.rollbacks)
	}
}

// TestWriterFlushesDeferredBeforeOtherOps: writes that deferred ops leave
// to the commit hook are made before the next op that is not deferred, and
// at commit, so each op sees every write queued before it.
func TestWriterFlushesDeferredBeforeOtherOps(t *testing.T) {
	b := &fakeBackend{}
	w := newWriter(b, 1, 64, nil, 0)
	defer w.close()
	var queued []string // deferred writes not yet made; writer goroutine only
	flush := func(ctx context.Context, tx WriteTx) error {
		for _, l := range queued {
			if _, err := tx.Exec(ctx, "write", l); err != nil {
				return err
			}
		}
		queued = queued[:0]
		return nil
	}
	w.beforeOp, w.beforeCommit = flush, flush
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.do(context.Background(), "", func(ctx context.Context, tx *batchTx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	submit := func(label string, deferred bool) {
		wg.Add(1)
		n := len(w.queues[0])
		go func() {
			defer wg.Done()
			var err error
			if deferred {
				err = w.doDeferred(context.Background(), "", func(context.Context, *batchTx) error {
					queued = append(queued, label)
					return nil
				}, nil)
			} else {
				err = w.do(context.Background(), "", write(label))
			}
			if err != nil {
				t.Error(err)
			}
		}()
		for len(w.queues[0]) == n {
			runtime.Gosched() // keep the queue in submission order
		}
	}
	submit("d1", true)
	submit("d2", true)
	submit("op", false)
	submit("d3", true)
	close(release)
	wg.Wait()
	want := []string{"d1", "d2", "op", "d3"}
	if len(b.committed) != len(want) {
		t.Fatalf("committed %v, want %v", b.committed, want)
	}
	for i := range want {
		if b.committed[i] != want[i] {
			t.Fatalf("committed %v, want %v", b.committed, want)
		}
	}
}

// TestAsyncWrites: with deferred sync, an asynchronous write's visible
// callback runs after its commit but while the sync is still going on, and
// its complete callback once, after the sync; more writes than the queue
// holds are all completed; after close, complete reports ErrClosed.
func TestAsyncWrites(t *testing.T) {
	b := &fakeBackend{}
	entered := make(chan struct{}, 64)
	release := make(chan error)
	w := newWriter(b, 1, 4, func() error {
		entered <- struct{}{}
		return <-release
	}, 0)
	visible := make(chan string, 64)
	completed := make(chan error, 64)
	w.doAsync("", write("a"), false, nil, func() { visible <- "a" }, func(err error) { completed <- err })
	<-entered // committed, now syncing
	if got := <-visible; got != "a" {
		t.Fatalf("visible %q", got)
	}
	select {
	case err := <-completed:
		t.Fatalf("completed before the sync finished: %v", err)
	default:
	}
	release <- nil
	if err := <-completed; err != nil {
		t.Fatalf("async write: %v", err)
	}

	// The writer is held in a sync while more writes than its queue of 4
	// holds come in: none blocks the caller, all complete.
	w.doAsync("", write("b"), false, nil, nil, func(err error) { completed <- err })
	<-entered
	const more = 20
	for i := range more {
		w.doAsync("", write(string(rune('c'+i))), false, nil, nil, func(err error) { completed <- err })
	}
	go func() {
		release <- nil // the sync of "b", already entered
		for range entered {
			release <- nil
		}
	}()
	for range more + 1 {
		if err := <-completed; err != nil {
			t.Fatalf("async write: %v", err)
		}
	}
	select {
	case err := <-completed:
		t.Fatalf("a write completed twice: %v", err)
	default:
	}
	w.close()
	close(entered)
	w.doAsync("", write("late"), false, nil, nil, func(err error) { completed <- err })
	if err := <-completed; !errors.Is(err, store.ErrClosed) {
		t.Fatalf("async write after close: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.committed) != more+2 {
		t.Fatalf("%d writes committed, want %d", len(b.committed), more+2)
	}
}

// TestSlowSyncDoesNotStopWriter: while one sync hangs, the writer keeps
// committing batches and making them visible (the notifier merges them),
// many more small batches than one sync used to wait for; every write
// completes once the sync returns, the ones made during it with one more
// sync.
func TestSlowSyncDoesNotStopWriter(t *testing.T) {
	b := &fakeBackend{}
	entered := make(chan struct{}, 1024)
	release := make(chan error)
	w := newWriter(b, 1, 4, func() error {
		entered <- struct{}{}
		return <-release
	}, 0)
	visible := make(chan struct{}, 1024)
	completed := make(chan error, 1024)
	const n = 64 // below FlushGroup*4 writes
	for i := range n {
		w.doAsync("", write(string(rune('a'+i))), false, nil, func() { visible <- struct{}{} }, func(err error) { completed <- err })
		select {
		case <-visible: // committed and visible: the next write is its own batch
		case <-time.After(10 * time.Second):
			t.Fatalf("write %d of %d not made visible while a sync hangs", i+1, n)
		}
		if i == 0 {
			<-entered // the first sync has started and hangs
		}
	}
	select {
	case err := <-completed:
		t.Fatalf("a write completed before its sync: %v", err)
	default:
	}
	go func() {
		release <- nil
		for range entered {
			release <- nil
		}
	}()
	for range n {
		if err := <-completed; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	w.close()
	close(entered)
}

// pacedAfterFirst returns a writer whose batches are paced an hour apart
// and that has just committed a first write, so that its next batch waits
// for a queue of paceOps writes (fewer if maxBatch is lower) or for close.
func pacedAfterFirst(t *testing.T, b *fakeBackend, maxBatch int) *writer {
	t.Helper()
	w := newWriter(b, 1, maxBatch, nil, time.Hour)
	if err := w.do(context.Background(), "", write("first")); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPacedBatchWaitsForQueue: under pacing, writes arriving soon after a
// commit are not committed one by one as they come but together, as soon
// as paceOps of them (or a full queue) wait behind the first.
func TestPacedBatchWaitsForQueue(t *testing.T) {
	for _, maxBatch := range []int{1024, 4} {
		b := &fakeBackend{}
		w := pacedAfterFirst(t, b, maxBatch)
		n := min(paceOps, maxBatch-1) + 1 // the one held and a full pace
		var wg sync.WaitGroup
		wg.Add(n)
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			w.doAsync("", write("w"), false, nil, nil, func(err error) {
				errs[i] = err
				wg.Done()
			})
			for i == 0 && len(w.queues[0]) > 0 {
				runtime.Gosched() // until the writer holds it (unpaced, it would commit it alone)
			}
		}
		wg.Wait()
		w.close()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if b.commits != 2 || len(b.committed) != n+1 {
			t.Fatalf("max batch %d: commits %d written %d; want 2 (the first write, then all %d queued), %d",
				maxBatch, b.commits, len(b.committed), n, n+1)
		}
	}
}

// TestCloseEndsPacedWait: close does not wait out the pacing interval; the
// write queued meanwhile is committed.
func TestCloseEndsPacedWait(t *testing.T) {
	b := &fakeBackend{}
	w := pacedAfterFirst(t, b, 1024)
	done := make(chan error, 1)
	w.doAsync("", write("late"), false, nil, nil, func(err error) { done <- err })
	w.close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.commits != 2 || len(b.committed) != 2 || b.committed[1] != "late" {
		t.Fatalf("commits %d written %v; want 2, [first late]", b.commits, b.committed)
	}
}
