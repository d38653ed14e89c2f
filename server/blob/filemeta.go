package blob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parley-im/parley/identity"
)

// FileMeta is a [MetaStore] that keeps each record in a JSON file in one
// folder, with an in-memory index loaded at open. It is meant for a single
// process without a database (tests, embedding the service elsewhere);
// `parley serve` keeps the records in its database through [StoreMeta], so
// that several server processes share them.
type FileMeta struct {
	dir   string
	mu    sync.Mutex
	index map[ID]Meta
	usage map[identity.AccountID]usage
}

type usage struct {
	bytes int64
	blobs int
}

func (s *FileMeta) add(owner identity.AccountID, bytes int64, blobs int) {
	u := s.usage[owner]
	u.bytes += bytes
	u.blobs += blobs
	if u.blobs == 0 {
		delete(s.usage, owner)
		return
	}
	s.usage[owner] = u
}

// metaFile is the JSON form of a record.
type metaFile struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Size      int64     `json:"size"`
	Offset    int64     `json:"offset"`
	HashState []byte    `json:"hash_state"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Finished  time.Time `json:"finished,omitzero"`
}

// maxMetaFile bounds what OpenFileMeta reads from one record file.
const maxMetaFile = 64 << 10

// OpenFileMeta opens (creating it if needed) a record folder and loads every
// record in it.
func OpenFileMeta(dir string) (*FileMeta, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create blob record folder: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to list blob records: %w", err)
	}
	s := &FileMeta{dir: dir, index: map[ID]Meta{}, usage: map[identity.AccountID]usage{}}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(dir, name)) // an interrupted write
			continue
		}
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		m, err := readMetaFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		s.index[m.ID] = m
		s.add(m.Owner, m.Size, 1)
	}
	return s, nil
}

func readMetaFile(path string) (Meta, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Meta{}, fmt.Errorf("failed to read blob record: %w", err)
	}
	if len(b) > maxMetaFile {
		return Meta{}, fmt.Errorf("%w: record %s too large", ErrCorrupt, path)
	}
	var f metaFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Meta{}, fmt.Errorf("%w: record %s: %v", ErrCorrupt, path, err)
	}
	id, err := ParseID(f.ID)
	if err != nil || filepath.Base(path) != id.String()+".json" || f.Offset < 0 || f.Offset > f.Size {
		return Meta{}, fmt.Errorf("%w: record %s", ErrCorrupt, path)
	}
	return Meta{ID: id, Owner: identity.AccountID(f.Owner), Size: f.Size, Offset: f.Offset,
		HashState: f.HashState, Created: f.Created, Updated: f.Updated, Finished: f.Finished}, nil
}

// write stores m durably: a temporary file, fsync, rename.
func (s *FileMeta) write(m Meta) error {
	b, err := json.Marshal(metaFile{ID: m.ID.String(), Owner: string(m.Owner), Size: m.Size, Offset: m.Offset,
		HashState: m.HashState, Created: m.Created, Updated: m.Updated, Finished: m.Finished})
	if err != nil {
		return fmt.Errorf("failed to encode blob record: %w", err)
	}
	path := filepath.Join(s.dir, m.ID.String()+".json")
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("failed to write blob record: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("failed to write blob record: %w", err)
	}
	return nil
}

// Create implements [MetaStore].
func (s *FileMeta) Create(_ context.Context, m Meta, quota Quota) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.index[m.ID]; ok {
		return fmt.Errorf("%w: duplicate blob id", ErrBadRequest)
	}
	u := s.usage[m.Owner]
	if quota.Bytes > 0 && u.bytes+m.Size > quota.Bytes {
		return fmt.Errorf("%w: %d of %d bytes in use, %d more requested", ErrQuota, u.bytes, quota.Bytes, m.Size)
	}
	if quota.Blobs > 0 && u.blobs >= quota.Blobs {
		return fmt.Errorf("%w: %d of %d blobs in use", ErrQuota, u.blobs, quota.Blobs)
	}
	if err := s.write(m); err != nil {
		return err
	}
	s.index[m.ID] = m
	s.add(m.Owner, m.Size, 1)
	return nil
}

// Get implements [MetaStore].
func (s *FileMeta) Get(_ context.Context, id ID) (Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.index[id]
	if !ok {
		return Meta{}, ErrNotFound
	}
	return m, nil
}

// Update implements [MetaStore].
func (s *FileMeta) Update(_ context.Context, m Meta, prevOffset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.index[m.ID]
	if !ok {
		return ErrNotFound
	}
	if old.Offset != prevOffset {
		return fmt.Errorf("%w: record is at %d, update expected %d", ErrOffset, old.Offset, prevOffset)
	}
	next := old
	next.Offset, next.HashState, next.Updated, next.Finished = m.Offset, m.HashState, m.Updated, m.Finished
	if err := s.write(next); err != nil {
		return err
	}
	s.index[m.ID] = next
	return nil
}

// Delete implements [MetaStore].
func (s *FileMeta) Delete(_ context.Context, id ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.index[id]
	if !ok {
		return nil
	}
	if err := os.Remove(filepath.Join(s.dir, id.String()+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to delete blob record: %w", err)
	}
	delete(s.index, id)
	s.add(m.Owner, -m.Size, -1)
	return nil
}

// Expired implements [MetaStore].
func (s *FileMeta) Expired(_ context.Context, idleBefore, finishedBefore time.Time, limit int) ([]ID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ID
	for id, m := range s.index {
		if len(out) >= limit {
			break
		}
		if (m.Finished.IsZero() && m.Updated.Before(idleBefore)) || (!m.Finished.IsZero() && m.Finished.Before(finishedBefore)) {
			out = append(out, id)
		}
	}
	return out, nil
}

// All returns every record, for moving them into another [MetaStore].
func (s *FileMeta) All() []Meta {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Meta, 0, len(s.index))
	for _, m := range s.index {
		out = append(out, m)
	}
	return out
}
