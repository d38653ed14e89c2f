package archive

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// MaxSegments bounds the segments one archive listing may name.
const MaxSegments = 1 << 20

// fetchWorkers is how many blobs are fetched at once.
const fetchWorkers = 8

// segmentRef is one opened key record.
type segmentRef struct {
	id    SegmentID
	key   DataKey
	entry IndexEntry
	gen   Generation
}

// loadIndex lists, fetches and opens every key record, and returns the
// segments in restore order. Names that are not key records are ignored.
func loadIndex(ctx context.Context, remote Remote, ring *Keyring) ([]segmentRef, error) {
	names, err := remote.List(ctx, KeyRecordPrefix)
	if err != nil {
		return nil, fmt.Errorf("failed to list key records: %w", err)
	}
	if len(names) > MaxSegments {
		return nil, fmt.Errorf("%w: archive lists %d segments, over %d", ErrMalformed, len(names), MaxSegments)
	}
	var ids []SegmentID
	for _, n := range names {
		if id, ok := parseBlobName(n, KeyRecordPrefix); ok {
			ids = append(ids, id)
		}
	}
	refs := make([]segmentRef, len(ids))
	err = forEach(ctx, len(ids), func(ctx context.Context, i int) error {
		blob, err := remote.Get(ctx, KeyRecordBlob(ids[i]))
		if err != nil {
			return fmt.Errorf("failed to fetch key record: %w", err)
		}
		g, err := keyRecordGeneration(blob)
		if err != nil {
			return err
		}
		key, e, err := openKeyRecord(ring, ids[i], blob)
		if err != nil {
			return err
		}
		refs[i] = segmentRef{id: ids[i], key: key, entry: *e, gen: g}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(refs, func(a, b segmentRef) int {
		switch {
		case a.entry.before(&b.entry):
			return -1
		case b.entry.before(&a.entry):
			return 1
		}
		return 0
	})
	return refs, nil
}

// forEach runs fn for 0..n-1 on up to fetchWorkers goroutines and returns
// the first error, after which the remaining calls are skipped.
func forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(fetchWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// fetchSegments fetches and opens refs' segments on up to fetchWorkers
// goroutines and hands them to use in order, one at a time.
func fetchSegments(ctx context.Context, remote Remote, refs []segmentRef, use func(i int, recs []Record) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		recs []Record
		err  error
	}
	// One buffered channel per segment keeps the order; at most
	// fetchWorkers*2 segments are decoded ahead of use.
	slots := make([]chan result, len(refs))
	for i := range slots {
		slots[i] = make(chan result, 1)
	}
	sem := make(chan struct{}, fetchWorkers*2)
	go func() {
		for i := range refs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				blob, err := remote.Get(ctx, SegmentBlob(refs[i].id))
				if err != nil {
					slots[i] <- result{err: fmt.Errorf("failed to fetch segment: %w", err)}
					return
				}
				recs, err := openSegment(refs[i].id, &refs[i].key, blob)
				slots[i] <- result{recs: recs, err: err}
			}()
		}
	}()
	for i := range refs {
		var r result
		select {
		case r = <-slots[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-sem
		if r.err != nil {
			return r.err
		}
		if err := use(i, r.recs); err != nil {
			return err
		}
	}
	return nil
}
