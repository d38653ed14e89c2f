package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DBFileName is the database file's name inside the profile folder.
const DBFileName = "store.db"

// pragmas apply to every connection. WAL lets readers run alongside the one
// writer; synchronous=FULL fsyncs the WAL on every commit, so a commit that
// returned survives a process crash, an OS crash and a power loss;
// secure_delete overwrites deleted content, so a deleted or expired message's
// ciphertext does not linger in free pages.
const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=secure_delete(ON)&_pragma=temp_store(MEMORY)"

// keyCheckName names the meta row that proves the profile key opens this
// database: a sealed constant written with the schema.
const keyCheckName = "key_check"

var keyCheckPlain = []byte("parley client store key check v1")

// Options configure Create and Open.
type Options struct {
	// Passphrase unlocks (Open) or protects (Create) the profile key. Empty
	// means the profile has no passphrase: the key is kept in profile.key.
	Passphrase []byte
	// KDF are the Argon2id parameters used when wrapping the key; the zero
	// value means DefaultKDFParams. Opening uses the parameters recorded in
	// the key file.
	KDF KDFParams
	// Rand is the source of keys and nonces; nil means crypto/rand.
	Rand io.Reader
}

func (o *Options) rand() io.Reader {
	if o.Rand != nil {
		return o.Rand
	}
	return rand.Reader
}

func (o *Options) kdf() KDFParams {
	if o.KDF == (KDFParams{}) {
		return DefaultKDFParams
	}
	return o.KDF
}

// Store is an open profile. It is safe for concurrent use: reads run on a
// pool of read-only connections; writes go through [Store.Update], which
// runs them on the one writer connection, one transaction at a time.
type Store struct {
	dir    string
	rand   io.Reader
	seal   *sealer
	keyMu  sync.Mutex // guards key and writes of profile.key
	key    ProfileKey
	readDB *sql.DB

	// wmu makes the writer exclusive: SQLite has exactly one writer, the
	// connection in writeDB, and wmu lets one Update at a time use it. Group
	// commit is explicit: callers put many writes in one Update (or one
	// [Batch]), which costs one fsync.
	wmu     sync.Mutex
	writeDB *sql.DB
	closed  atomic.Bool          // set once, under wmu; read without it
	stmts   map[string]*sql.Stmt // prepared writer statements; read-only after open
}

// CheckFree fails with ErrProfileExists if dir already holds a profile key
// or a database, as Create would; a missing dir is free. Callers that do
// work before Create (linking a device) check first.
func CheckFree(dir string) error {
	for _, name := range []string{KeyFileName, DBFileName} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("%w: %s", ErrProfileExists, name)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("failed to check profile folder: %w", err)
		}
	}
	return nil
}

// Create makes a new profile in dir (created with mode 0700 if missing): a
// fresh random profile key, wrapped with opts.Passphrase when one is given,
// and an empty database. It fails with ErrProfileExists if dir already holds
// a profile key or a database.
func Create(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create profile folder: %w", err)
	}
	if err := CheckFree(dir); err != nil {
		return nil, err
	}
	var pk ProfileKey
	if _, err := io.ReadFull(opts.rand(), pk[:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for profile key: %w", err)
	}
	defer clear(pk[:])
	kf := plainKeyFile(&pk)
	if len(opts.Passphrase) > 0 {
		var err error
		if kf, err = wrapKeyFile(&pk, opts.Passphrase, opts.kdf(), opts.rand()); err != nil {
			return nil, err
		}
	}
	// The key file is written first: a crash before the database exists
	// leaves a profile that Open completes.
	if err := writeKeyFile(dir, kf); err != nil {
		return nil, err
	}
	return open(ctx, dir, &pk, opts.rand())
}

// Open opens the profile in dir, unlocking its key with opts.Passphrase when
// it has one. Errors: ErrNoProfile, ErrPassphraseRequired,
// ErrWrongPassphrase, ErrNoPassphraseSet, ErrBadKeyFile, ErrWrongKey,
// ErrSchemaTooNew. An Open refused for its passphrase or key file changes
// nothing on disk. A folder holding profile.key but no database (a Create
// interrupted by a crash) gets an empty database.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	kf, err := readKeyFile(dir)
	if err != nil {
		return nil, err
	}
	pk, err := kf.unlock(opts.Passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(pk[:])
	return open(ctx, dir, &pk, opts.rand())
}

func checkDir(dir string) error {
	if dir == "" || strings.ContainsAny(dir, "?#") {
		return invalidf("profile folder %q", dir)
	}
	return nil
}

func open(ctx context.Context, dir string, pk *ProfileKey, rnd io.Reader) (*Store, error) {
	path := filepath.Join(dir, DBFileName)
	// Create the file with mode 0600 before SQLite does; SQLite gives the
	// WAL and shared-memory files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open database: %w", err)
	}
	_ = f.Close()
	seal, err := newSealer(pk, rnd)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, rand: rnd, seal: seal, key: *pk}
	if err := s.openDB(ctx, path); err != nil {
		s.seal.zero()
		return nil, err
	}
	return s, nil
}

func (s *Store) openDB(ctx context.Context, path string) (err error) {
	s.writeDB, err = sql.Open("sqlite", path+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("failed to open database: %w", err)
	}
	s.writeDB.SetMaxOpenConns(1)
	s.writeDB.SetMaxIdleConns(1)
	s.writeDB.SetConnMaxLifetime(0)
	defer func() {
		if err != nil {
			_ = s.writeDB.Close()
			if s.readDB != nil {
				_ = s.readDB.Close()
			}
		}
	}()
	var mode string
	if err := s.writeDB.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("failed to open database: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("failed to enable WAL mode (mode %q)", mode)
	}
	if err := migrate(ctx, s.writeDB, s.initSchema); err != nil {
		return err
	}
	if err := s.checkKey(ctx); err != nil {
		return err
	}
	if err := s.prepareWriter(ctx); err != nil {
		return err
	}
	s.readDB, err = sql.Open("sqlite", path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		return fmt.Errorf("failed to open database readers: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.readDB.SetMaxOpenConns(n)
	s.readDB.SetMaxIdleConns(n)
	return nil
}

const (
	qInsertMeta = `INSERT INTO meta (name, value) VALUES (?, ?)`
	qSelectMeta = `SELECT value FROM meta WHERE name = ?`
	// The literal is pendingBase, written out so the partial index
	// messages_pending applies (TestPendingBaseLiteral checks it).
	qMaxPendingPos = `SELECT MAX(pos) FROM messages INDEXED BY messages_pending WHERE pos >= 4611686018427387904`
	// The next change number is past every row's and past the floor
	// DeleteConversation leaves (meta row change_floor), so numbers are never
	// given twice: the archive uploader's cursor would skip a reused one.
	qMaxChange = `SELECT MAX(COALESCE((SELECT MAX(change_seq) FROM messages), 0),
	COALESCE((SELECT value FROM meta WHERE name = 'change_floor'), 0)) + 1`
)

// initSchema writes the key check in the transaction that creates the schema.
func (s *Store) initSchema(tx *sql.Tx) error {
	v, err := s.seal.seal(rowRef{table: "meta", column: "value", key: []byte(keyCheckName)}, keyCheckPlain)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(qInsertMeta, keyCheckName, v); err != nil {
		return fmt.Errorf("failed to write key check: %w", err)
	}
	return nil
}

// checkKey verifies that the profile key opens this database.
func (s *Store) checkKey(ctx context.Context) error {
	var v []byte
	if err := s.writeDB.QueryRowContext(ctx, qSelectMeta, keyCheckName).Scan(&v); err != nil {
		return fmt.Errorf("failed to read key check: %w", err)
	}
	pt, err := s.seal.open(rowRef{table: "meta", column: "value", key: []byte(keyCheckName)}, v)
	if err != nil || !equalBytes(pt, keyCheckPlain) {
		return ErrWrongKey
	}
	return nil
}

// Dir returns the profile folder.
func (s *Store) Dir() string { return s.dir }

// HasPassphrase reports whether the profile key is wrapped with a passphrase.
func (s *Store) HasPassphrase() (bool, error) {
	kf, err := readKeyFile(s.dir)
	if err != nil {
		return false, err
	}
	return kf.hasPassphrase(), nil
}

// SetPassphrase re-wraps the profile key: with passphrase under Argon2id
// with params (zero means DefaultKDFParams), or, when passphrase is empty,
// kept in the clear in profile.key. Only the key file changes; it is
// replaced atomically. The caller is expected to have confirmed the current
// passphrase with the user (the store is already unlocked).
func (s *Store) SetPassphrase(passphrase []byte, params KDFParams) error {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	kf := plainKeyFile(&s.key)
	if len(passphrase) > 0 {
		if params == (KDFParams{}) {
			params = DefaultKDFParams
		}
		var err error
		if kf, err = wrapKeyFile(&s.key, passphrase, params, s.rand); err != nil {
			return err
		}
	}
	return writeKeyFile(s.dir, kf)
}

// Close closes the database and forgets the keys. Further calls fail with
// ErrClosed.
func (s *Store) Close() error {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	s.closed.Store(true)
	clear(s.key[:])
	s.seal.zero()
	errs := []error{s.readDB.Close()}
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, s.writeDB.Close())...)
}

// Update runs fn in one write transaction and commits it durably (the WAL
// is fsynced before Update returns nil). If fn returns an error, nothing fn
// wrote is kept and Update returns that error. fn must not keep tx or use it
// after returning, and must not call Update itself.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	sqlTx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to begin transaction: %w", err)
	}
	committed := false
	defer func() {
		// Also reached if fn panics: the transaction must not stay open on
		// the only writer connection.
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	tx := &Tx{s: s, ctx: ctx, tx: sqlTx}
	if err := fn(tx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("failed to commit: %w", err)
	}
	committed = true
	return nil
}

// Tx is an open write transaction, passed to the function given to
// [Store.Update]. Its reads see its own writes.
type Tx struct {
	s     *Store
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt // this transaction's handles on prepared statements

	// Counters for new rows, read from the database on first use. Reading
	// them inside the (IMMEDIATE) transaction keeps them right even when
	// another process has written to the profile in between.
	countersLoaded bool
	nextPending    Position
	nextChange     ChangeSeq

	// displaced counts messages moved out of the way of a reused
	// sequence number (see displace.go).
	displaced int
}

// loadCounters reads the next pending position and change number.
func (tx *Tx) loadCounters() error {
	if tx.countersLoaded {
		return nil
	}
	var maxPending sql.NullInt64
	if err := tx.queryRow(qMaxPendingPos).Scan(&maxPending); err != nil {
		return fmt.Errorf("failed to read pending positions: %w", err)
	}
	if err := tx.queryRow(qMaxChange).Scan(&tx.nextChange); err != nil {
		return fmt.Errorf("failed to read change counter: %w", err)
	}
	tx.nextPending = pendingBase
	if maxPending.Valid {
		tx.nextPending = Position(maxPending.Int64) + 1
	}
	tx.countersLoaded = true
	return nil
}

// querier is what reads need; *sql.DB and *sql.Tx both have it.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader returns the read pool, or ErrClosed.
func (s *Store) reader() (querier, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.readDB, nil
}

// writerQueries are prepared once on the writer connection when the store
// opens, and reused by every transaction: parsing SQL costs more than running
// these statements.
var writerQueries = []string{
	qInsertMessage, qSelectMessage, qSelectEditState, qAdoptSeq, qSetState, qSelectState, qApplyEdit,
	qTombstone, qEventsOf, qHasWaiting, qPendingEvents, qUpsertGroupState, qSelectGroupState, qAdvanceCursor,
	qSelectCursor, qMaxPendingPos, qMaxChange, qInsertOutbox, qSetOutboxSealed, qOutboxRetry, qOutboxDel, qInsertKeyPackage,
	qSelectKeyPackage, qDeleteKeyPackage, qUpsertConversation, qSelectConversation, qMarkRead,
	qUpsertSetting, qUpsertContact, qExpired,
}

// prepareWriter prepares writerQueries on the writer connection.
func (s *Store) prepareWriter(ctx context.Context) error {
	s.stmts = make(map[string]*sql.Stmt, len(writerQueries))
	for _, q := range writerQueries {
		st, err := s.writeDB.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("failed to prepare statement: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// stmt returns this transaction's handle on a prepared writer statement,
// or nil for a query that is not prepared.
func (tx *Tx) stmt(query string) *sql.Stmt {
	if st, ok := tx.stmts[query]; ok {
		return st
	}
	st, ok := tx.s.stmts[query]
	if !ok {
		return nil
	}
	if tx.stmts == nil {
		tx.stmts = make(map[string]*sql.Stmt)
	}
	st = tx.tx.StmtContext(tx.ctx, st)
	tx.stmts[query] = st
	return st
}

func (tx *Tx) execResult(query string, args ...any) (sql.Result, error) {
	if st := tx.stmt(query); st != nil {
		return st.ExecContext(tx.ctx, args...)
	}
	return tx.tx.ExecContext(tx.ctx, query, args...)
}

func (tx *Tx) exec(query string, args ...any) (int64, error) {
	res, err := tx.execResult(query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (tx *Tx) queryRow(query string, args ...any) *sql.Row {
	if st := tx.stmt(query); st != nil {
		return st.QueryRowContext(tx.ctx, args...)
	}
	return tx.tx.QueryRowContext(tx.ctx, query, args...)
}

func (tx *Tx) query(query string, args ...any) (*sql.Rows, error) {
	if st := tx.stmt(query); st != nil {
		return st.QueryContext(tx.ctx, args...)
	}
	return tx.tx.QueryContext(tx.ctx, query, args...)
}
