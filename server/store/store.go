// Package store defines what the Parley homeserver keeps on disk and the
// interfaces through which it keeps it.
//
// The server holds no plaintext: message bodies, Welcomes, key packages and
// device certificates are opaque bytes to this package. What it does know is
// what routing needs: accounts and their devices, optional usernames, the
// member devices and current epoch of each MLS group, one append-only log per
// group, a read cursor per member device, and a mailbox per device.
//
// One interface per concern ([Accounts], [Devices], [Usernames], [Invites],
// [KeyPackages], [DeliveryService], [GroupLog], [Mailbox], [Expiry]) is
// combined into [Store]. Two implementations exist: server/store/sqlite (the
// default, one file in the data folder) and server/store/postgres. Callers
// open one with server/store/open, which picks the backend from the DSN:
// "postgres://" or "postgresql://" selects PostgreSQL, anything else is a
// directory holding the SQLite file. Open lives in its own package because the
// backends import this one for its types; a registry filled by init functions
// would hide the dependency instead.
//
// Promises every implementation keeps (server/store/storetest checks them):
//   - A write method returns nil only once the write is durable (committed
//     and, for SQLite, fsynced). Concurrent writes are batched into one
//     transaction (group commit), so throughput is not one fsync per write.
//   - Sequence numbers (group log, mailbox) only increase and are never
//     reused, but may jump: SQLite adds a gap each time it opens.
//   - A group message is stored once, whatever the number of members; each
//     member device reads it from its own cursor.
//   - Exactly one commit is accepted per group epoch; the others get an
//     [*EpochError] matching [ErrEpochConflict].
//   - Each one-time key package is handed out at most once.
//
// Times are passed in by the caller (the store never reads the clock) and are
// kept with nanosecond precision. Appends and deliveries need a non-zero time
// (expiry goes by it); a Welcome without one takes its commit's.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/identity"
)

// GroupID is an MLS group_id: opaque bytes chosen by the client, held as a
// string so it can be compared and used as a map key.
type GroupID string

// MaxGroupIDLen is the longest group id the store accepts.
const MaxGroupIDLen = 255

// Valid reports whether g has an acceptable length (1..MaxGroupIDLen bytes).
func (g GroupID) Valid() bool { return len(g) > 0 && len(g) <= MaxGroupIDLen }

// MessageIDSize is the size of a message id in bytes.
const MessageIDSize = 16

// MessageID is chosen at random by the sending client. The store uses it to
// make resends idempotent: storing the same id twice in one group log or one
// mailbox returns the sequence number of the first copy.
type MessageID [MessageIDSize]byte

// InviteToken is a one-use registration token for invite-only servers.
type InviteToken string

// DeviceRef names one device of one account.
type DeviceRef struct {
	Account identity.AccountID
	Device  identity.DeviceID
}

// Account is a registered account.
type Account struct {
	ID identity.AccountID
	// PublicKey is the account's Ed25519 public key (32 bytes).
	PublicKey []byte
	CreatedAt time.Time
}

// Device is one device of an account.
type Device struct {
	Account identity.AccountID
	ID      identity.DeviceID
	// Certificate is the device certificate, opaque to the store; the server
	// verifies it with the identity package before storing it.
	Certificate []byte
	// SigningKey is the device's signature public key, used to check its
	// authentication challenges.
	SigningKey []byte
	CreatedAt  time.Time
	// RevokedAt is the zero time for a device that is not revoked.
	RevokedAt time.Time
}

// Ref returns the device's reference.
func (d Device) Ref() DeviceRef { return DeviceRef{Account: d.Account, Device: d.ID} }

// Revoked reports whether the device has been revoked.
func (d Device) Revoked() bool { return !d.RevokedAt.IsZero() }

// NewAccount is what registration stores in one transaction.
type NewAccount struct {
	Account     Account
	FirstDevice Device
	// Invite, when not empty, is consumed atomically with the registration;
	// an unknown token gives ErrNotFound, a used one ErrInviteUsed.
	Invite InviteToken
}

// Username is a claimed username.
type Username struct {
	// Name is the case-folded name; the server folds and checks it.
	Name    string
	Account identity.AccountID
	// Claim is the binding signed by the account key, opaque to the store.
	Claim     []byte
	CreatedAt time.Time
}

// KeyPackage is an MLS KeyPackage uploaded by a device.
type KeyPackage struct {
	Data []byte
	// LastResort marks the device's fallback package: it is handed out only
	// when no one-time package is left, and is not consumed. Uploading a new
	// last-resort package replaces the previous one.
	LastResort bool
}

// ClaimedKeyPackage is one package handed out by [KeyPackages.ClaimKeyPackages].
type ClaimedKeyPackage struct {
	Device     identity.DeviceID
	Data       []byte
	LastResort bool
}

// Group is the delivery service's view of an MLS group.
type Group struct {
	ID GroupID
	// Epoch is the current MLS epoch: the epoch the next commit must carry.
	Epoch uint64
	// LastSeq is the sequence number of the newest log entry (0 when empty).
	LastSeq   uint64
	CreatedAt time.Time
}

// Member is a member device of a group, known for routing only.
type Member struct {
	Device DeviceRef
	// JoinedSeq is the log position at which the device joined; it reads the
	// entries after it.
	JoinedSeq uint64
	// AckedSeq is the device's cursor: the newest entry it has acknowledged.
	// It never moves backwards and starts at JoinedSeq.
	AckedSeq uint64
}

// Membership is one group a device belongs to, with the read position, as
// needed to catch a device up on connect.
type Membership struct {
	Group    GroupID
	AckedSeq uint64
	// LastSeq is the group's newest log entry; the device is behind when
	// LastSeq > AckedSeq.
	LastSeq uint64
}

// MessageKind says what a group log entry carries.
type MessageKind uint8

// Kinds of group log entries.
const (
	KindCommit      MessageKind = 1
	KindProposal    MessageKind = 2
	KindApplication MessageKind = 3
)

// Valid reports whether k is a known kind.
func (k MessageKind) Valid() bool { return k >= KindCommit && k <= KindApplication }

// LogEntry is one entry of a group log.
type LogEntry struct {
	Group GroupID
	// Seq is assigned by the store: 1 for the first entry, +1 per entry.
	Seq       uint64
	ID        MessageID
	Epoch     uint64
	Kind      MessageKind
	Sender    DeviceRef
	Data      []byte
	CreatedAt time.Time
}

// Message is an application or proposal message to append to a group log.
type Message struct {
	Group  GroupID
	ID     MessageID
	Epoch  uint64
	Kind   MessageKind // KindApplication or KindProposal
	Sender DeviceRef
	Data   []byte
	At     time.Time
	// EpochGrace is how many epochs behind the current one the message may
	// be: 0 accepts only the current epoch, 1 also the previous one. A
	// message from the future or older than that gets an [*EpochError].
	EpochGrace uint64
	// Visible, if set, is called with the message's seq (a resend's: its
	// stored copy's) as soon as the entry is readable by other
	// connections, and before AppendMessage returns nil. A store that
	// commits before it syncs (SQLite) calls it before the entry is
	// durable, so the server can push it to online members while the disk
	// flushes; the sender is still answered only once it is durable. It may
	// also be called when AppendMessage then fails (the sync failed, or ctx
	// ended while waiting). It must not block.
	Visible func(seq uint64)
}

// Commit is an MLS commit to append to a group log, together with the
// routing change it makes.
type Commit struct {
	Group  GroupID
	ID     MessageID
	Epoch  uint64 // must equal the group's current epoch
	Sender DeviceRef
	Data   []byte
	At     time.Time
	// Added devices become members; their cursor starts at the commit's seq.
	Added []DeviceRef
	// Removed devices stop being members; their cursors are dropped.
	Removed []DeviceRef
	// Welcomes are put in the added devices' mailboxes in the same
	// transaction. They are not subject to the mailbox limit (they are
	// bounded by the number of added devices).
	Welcomes []MailboxMessage
}

// MailKind says what a mailbox entry carries.
type MailKind uint8

// Kinds of mailbox entries.
const (
	MailWelcome MailKind = 1
	MailLink    MailKind = 2
	MailOther   MailKind = 3
)

// Valid reports whether k is a known kind.
func (k MailKind) Valid() bool { return k >= MailWelcome && k <= MailOther }

// MailboxMessage is a message addressed to one device.
type MailboxMessage struct {
	To   DeviceRef
	ID   MessageID
	Kind MailKind
	Data []byte
	At   time.Time
}

// MailboxEntry is a stored mailbox message.
type MailboxEntry struct {
	To DeviceRef
	// Seq is assigned by the store, increasing per device, never reused.
	Seq       uint64
	ID        MessageID
	Kind      MailKind
	Data      []byte
	CreatedAt time.Time
}

// ExpiryResult counts what [Expiry.Expire] deleted.
type ExpiryResult struct {
	LogEntries     int64
	MailboxEntries int64
}

// Sentinel errors. Implementations wrap them; test with errors.Is.
var (
	// ErrNotFound: the account, device, group, username, invite or entry
	// does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: the account, device, group or username already exists.
	ErrExists = errors.New("store: already exists")
	// ErrEpochConflict: a commit carried an epoch that is not current
	// (another commit won). The error is an [*EpochError].
	ErrEpochConflict = errors.New("store: epoch conflict")
	// ErrEpochStale: a message's epoch is outside the accepted window. The
	// error is an [*EpochError].
	ErrEpochStale = errors.New("store: epoch outside accepted window")
	// ErrQueueFull: the device's mailbox holds the maximum number of entries.
	ErrQueueFull = errors.New("store: mailbox full")
	// ErrRevoked: the device is revoked and can neither act nor receive.
	ErrRevoked = errors.New("store: device revoked")
	// ErrNotMember: the device is not a member of the group.
	ErrNotMember = errors.New("store: not a group member")
	// ErrInviteUsed: the invite token has already been used.
	ErrInviteUsed = errors.New("store: invite already used")
	// ErrInvalid: an argument is malformed (empty group id, unknown kind ...).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store: closed")
)

// EpochError reports that a commit or message did not match the group's
// current epoch. It matches ErrEpochConflict (a commit that lost the race, or
// a message from a future epoch) or ErrEpochStale (a message too old).
type EpochError struct {
	// Current is the group's epoch at the time of the refusal.
	Current uint64
	// Stale is true for a message older than the accepted window.
	Stale bool
}

// Error implements error.
func (e *EpochError) Error() string {
	if e.Stale {
		return fmt.Sprintf("store: epoch outside accepted window (current epoch %d)", e.Current)
	}
	return fmt.Sprintf("store: epoch conflict (current epoch %d)", e.Current)
}

// Is makes errors.Is match ErrEpochConflict or ErrEpochStale.
func (e *EpochError) Is(target error) bool {
	if e.Stale {
		return target == ErrEpochStale
	}
	return target == ErrEpochConflict
}

// Accounts stores accounts.
type Accounts interface {
	// CreateAccount registers an account with its first device, consuming
	// the invite if one is given, in one transaction. ErrExists if the
	// account exists.
	CreateAccount(ctx context.Context, a NewAccount) error
	// Account returns an account, or ErrNotFound.
	Account(ctx context.Context, id identity.AccountID) (Account, error)
	// DeleteAccount deletes the account and everything the store holds for
	// it: devices, key packages, username, mailboxes, group memberships and
	// cursors. Group log entries it sent stay (they belong to the groups).
	// ErrNotFound if it does not exist.
	DeleteAccount(ctx context.Context, id identity.AccountID) error
}

// Devices stores the devices of accounts.
type Devices interface {
	// AddDevice adds a device to an existing account. ErrNotFound if the
	// account does not exist, ErrExists if the device does.
	AddDevice(ctx context.Context, d Device) error
	// Device returns a device, revoked or not, or ErrNotFound.
	Device(ctx context.Context, ref DeviceRef) (Device, error)
	// Devices lists an account's devices, revoked ones included, ordered by
	// device id. ErrNotFound if the account does not exist.
	Devices(ctx context.Context, account identity.AccountID) ([]Device, error)
	// RevokeDevice marks a device revoked at the given time, deletes its key
	// packages and mailbox, and removes it from its groups. Revoking a
	// revoked device is a no-op. ErrNotFound if it does not exist.
	RevokeDevice(ctx context.Context, ref DeviceRef, at time.Time) error
}

// Usernames stores the optional, unique usernames. An account holds at most
// one; claiming another releases the previous one.
type Usernames interface {
	// ClaimUsername binds u.Name to u.Account. ErrExists if another account
	// holds the name; claiming one's own name again updates the claim.
	// ErrNotFound if the account does not exist.
	ClaimUsername(ctx context.Context, u Username) error
	// ReleaseUsername frees the name if account holds it, else ErrNotFound.
	ReleaseUsername(ctx context.Context, account identity.AccountID, name string) error
	// LookupUsername returns the binding of a name, or ErrNotFound.
	LookupUsername(ctx context.Context, name string) (Username, error)
	// UsernameOf returns the account's username, or ErrNotFound.
	UsernameOf(ctx context.Context, account identity.AccountID) (Username, error)
}

// Invites stores registration invites.
type Invites interface {
	// CreateInvite stores a new unused token. ErrExists if it exists.
	CreateInvite(ctx context.Context, token InviteToken, at time.Time) error
	// UseInvite marks a token used. ErrNotFound if unknown, ErrInviteUsed
	// if already used.
	UseInvite(ctx context.Context, token InviteToken, at time.Time) error
}

// KeyPackages stores the devices' MLS KeyPackages.
type KeyPackages interface {
	// UploadKeyPackages adds packages for a device. ErrNotFound if the device
	// does not exist, ErrRevoked if it is revoked.
	UploadKeyPackages(ctx context.Context, dev DeviceRef, pkgs []KeyPackage) error
	// ClaimKeyPackages atomically takes one package for each non-revoked
	// device of the account: a one-time package (deleted, so handed out only
	// once) or, when none is left, the device's last-resort package (kept).
	// Devices with neither are left out. ErrNotFound if the account does not
	// exist.
	ClaimKeyPackages(ctx context.Context, account identity.AccountID) ([]ClaimedKeyPackage, error)
	// CountKeyPackages returns the device's number of one-time packages.
	CountKeyPackages(ctx context.Context, dev DeviceRef) (int, error)
}

// DeliveryService is the MLS delivery service: it knows each group's member
// devices (for routing) and epoch, and orders the group's log.
type DeliveryService interface {
	// CreateGroup creates a group at epoch 0 whose only member is creator.
	// ErrExists if the id is taken; ErrNotFound/ErrRevoked for a bad creator.
	CreateGroup(ctx context.Context, id GroupID, creator DeviceRef, at time.Time) error
	// Group returns a group, or ErrNotFound.
	Group(ctx context.Context, id GroupID) (Group, error)
	// Members lists a group's member devices. ErrNotFound if no such group.
	Members(ctx context.Context, id GroupID) ([]Member, error)
	// Member returns one member, or ErrNotMember (ErrNotFound if no group).
	Member(ctx context.Context, id GroupID, dev DeviceRef) (Member, error)
	// Memberships lists the groups a device belongs to.
	Memberships(ctx context.Context, dev DeviceRef) ([]Membership, error)
	// AppendCommit appends a commit and advances the epoch by one, applying
	// its membership change and queueing its Welcomes, in one transaction.
	// It returns the entry's seq. A commit whose epoch is not current gets
	// an [*EpochError] matching ErrEpochConflict. A commit whose message id
	// is already in the log returns the original seq and changes nothing.
	// ErrNotMember if the sender is not a member; ErrRevoked if it is revoked.
	AppendCommit(ctx context.Context, c Commit) (seq uint64, err error)
	// AppendMessage appends an application or proposal message and returns
	// its seq; a message id already in the log returns the original seq.
	// Epoch outside [current-EpochGrace, current] gives an [*EpochError].
	AppendMessage(ctx context.Context, m Message) (seq uint64, err error)
}

// GroupLog reads group logs and keeps the member devices' cursors.
type GroupLog interface {
	// ReadGroup returns up to limit entries with seq > after, in order.
	// Entries removed by expiry are skipped.
	ReadGroup(ctx context.Context, id GroupID, after uint64, limit int) ([]LogEntry, error)
	// AckGroup moves the device's cursor to seq; a cursor never moves
	// backwards (acking an older seq is a no-op). ErrNotMember if the device
	// is not a member; ErrInvalid if seq is past the group's last entry.
	AckGroup(ctx context.Context, dev DeviceRef, id GroupID, seq uint64) error
}

// Mailbox holds messages addressed to one device.
type Mailbox interface {
	// Deliver queues a message for one device and returns its seq; the same
	// message id to the same device returns the original seq. ErrNotFound
	// for an unknown device, ErrRevoked for a revoked one, ErrQueueFull when
	// the mailbox holds Options.MailboxLimit entries.
	Deliver(ctx context.Context, m MailboxMessage) (seq uint64, err error)
	// ReadMailbox returns up to limit entries with seq > after, in order.
	ReadMailbox(ctx context.Context, dev DeviceRef, after uint64, limit int) ([]MailboxEntry, error)
	// AckMailbox deletes the given entries; unknown seqs are ignored.
	AckMailbox(ctx context.Context, dev DeviceRef, seqs []uint64) error
	// MailboxDepth returns the number of entries waiting for the device.
	MailboxDepth(ctx context.Context, dev DeviceRef) (int, error)
}

// Expiry deletes undelivered data past its time to live.
type Expiry interface {
	// Expire deletes group log and mailbox entries created before the
	// given time, walking each log and mailbox from its front: an entry
	// behind a newer one in the same log or mailbox (its time went
	// backwards) is kept until that newer one expires too. Sequence
	// numbers are never reused afterwards.
	Expire(ctx context.Context, before time.Time) (ExpiryResult, error)
}

// Store is everything the server keeps. Implementations are safe for
// concurrent use.
type Store interface {
	Accounts
	Devices
	Usernames
	Invites
	KeyPackages
	DeliveryService
	GroupLog
	Mailbox
	Expiry
	Blobs
	// Close waits for pending writes and releases the store.
	Close() error
}

// AsyncAppender is implemented by stores that can append a group message
// without a goroutine waiting for the write (both SQL stores do).
type AsyncAppender interface {
	// AppendMessageAsync is AppendMessage that returns at once: done is
	// called exactly once with what AppendMessage would have returned, on
	// one of the store's goroutines once the message is durable or
	// refused, or on the caller's before AppendMessageAsync returns if
	// the message is invalid or the store closed. m.Visible is honoured as
	// by AppendMessage, before done. done must not block.
	AppendMessageAsync(m Message, done func(seq uint64, err error))
}

// Options configure a store.
type Options struct {
	// MailboxLimit is the most entries one device's mailbox may hold
	// (default DefaultMailboxLimit).
	MailboxLimit int
	// MaxBatch is the most writes committed in one transaction (default
	// DefaultMaxBatch, at most MaxMaxBatch).
	MaxBatch int
}

// Defaults for Options.
const (
	DefaultMailboxLimit = 10000
	DefaultMaxBatch     = 1024
	// MaxMaxBatch is the largest MaxBatch; larger values are lowered.
	MaxMaxBatch = 8192
	// MaxReadLimit caps the limit of ReadGroup and ReadMailbox.
	MaxReadLimit = 1000
	// MaxUploadBatch caps the packages in one UploadKeyPackages call.
	MaxUploadBatch = 1000
)

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.MailboxLimit <= 0 {
		o.MailboxLimit = DefaultMailboxLimit
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxBatch > MaxMaxBatch {
		o.MaxBatch = MaxMaxBatch
	}
	return o
}
