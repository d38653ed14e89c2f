package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/bus"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
)

// The delivery service. A group message is appended once to the group's
// log; each member device reads it from its own cursor (Fetch) and acks it.
// Once the store makes the append readable (with SQLite: committed, while
// the WAL is still being fsynced; with PostgreSQL: durable), the entry is
// pushed to the members' online connections through the bus, encoded once
// for all of them; the sender is answered once it is durable. Every member
// device receives it, the sender's included (its cursor must move past it
// too); clients drop duplicates by message id.

func invalidArg(format string, args ...any) error {
	return wire.NewError(wire.ErrorCode_INVALID_ARGUMENT, format, args...)
}

func groupID(b []byte) (store.GroupID, error) {
	g := store.GroupID(b)
	if !g.Valid() {
		return "", invalidArg("group_id must be 1 to %d bytes", store.MaxGroupIDLen)
	}
	return g, nil
}

func messageID(b []byte) (store.MessageID, error) {
	var id store.MessageID
	if len(b) != store.MessageIDSize {
		return id, invalidArg("message_id must be %d bytes", store.MessageIDSize)
	}
	copy(id[:], b)
	return id, nil
}

func deviceRef(r *wire.DeviceRef) (store.DeviceRef, error) {
	a, err := identity.ParseAccountID(r.GetAccountId())
	if err != nil {
		return store.DeviceRef{}, invalidArg("a device reference has a malformed account id")
	}
	d, err := identity.DeviceIDFromBytes(r.GetDeviceId())
	if err != nil {
		return store.DeviceRef{}, invalidArg("a device reference has a malformed device id")
	}
	return store.DeviceRef{Account: a, Device: d}, nil
}

func wireRef(r store.DeviceRef) *wire.DeviceRef {
	return &wire.DeviceRef{AccountId: string(r.Account), DeviceId: r.Device[:]}
}

func logKind(k wire.MessageKind) (store.MessageKind, error) {
	switch k {
	case wire.MessageKind_MESSAGE_KIND_UNSPECIFIED, wire.MessageKind_MESSAGE_KIND_APPLICATION:
		return store.KindApplication, nil
	case wire.MessageKind_MESSAGE_KIND_PROPOSAL:
		return store.KindProposal, nil
	}
	return 0, invalidArg("send carries application messages or proposals; commits go in a commit request")
}

func wireLogKind(k store.MessageKind) wire.MessageKind {
	switch k {
	case store.KindCommit:
		return wire.MessageKind_MESSAGE_KIND_COMMIT
	case store.KindProposal:
		return wire.MessageKind_MESSAGE_KIND_PROPOSAL
	}
	return wire.MessageKind_MESSAGE_KIND_APPLICATION
}

func mailKind(k wire.MessageKind) (store.MailKind, error) {
	switch k {
	case wire.MessageKind_MESSAGE_KIND_WELCOME:
		return store.MailWelcome, nil
	case wire.MessageKind_MESSAGE_KIND_LINK:
		return store.MailLink, nil
	case wire.MessageKind_MESSAGE_KIND_UNSPECIFIED, wire.MessageKind_MESSAGE_KIND_OTHER:
		return store.MailOther, nil
	}
	return 0, invalidArg("a mailbox item is a welcome, a link transfer or other")
}

func wireMailKind(k store.MailKind) wire.MessageKind {
	switch k {
	case store.MailWelcome:
		return wire.MessageKind_MESSAGE_KIND_WELCOME
	case store.MailLink:
		return wire.MessageKind_MESSAGE_KIND_LINK
	}
	return wire.MessageKind_MESSAGE_KIND_OTHER
}

func logDelivery(e store.LogEntry) *wire.Delivery {
	return &wire.Delivery{
		GroupId: []byte(e.Group), Seq: e.Seq, MessageId: e.ID[:], Kind: wireLogKind(e.Kind),
		Epoch: e.Epoch, Sender: wireRef(e.Sender), Data: e.Data, UnixTime: e.CreatedAt.Unix(),
	}
}

func mailDelivery(e store.MailboxEntry) *wire.Delivery {
	return &wire.Delivery{
		MailboxSeq: e.Seq, MessageId: e.ID[:], Kind: wireMailKind(e.Kind), Data: e.Data, UnixTime: e.CreatedAt.Unix(),
	}
}

// push publishes one event to devices, encoding it once.
func (s *Server) push(ctx context.Context, to []store.DeviceRef, ev *wire.Event) {
	if len(to) == 0 {
		return
	}
	b, err := proto.Marshal(&wire.Frame{Body: &wire.Frame_Event{Event: ev}})
	if err != nil {
		s.log.Error("failed to encode push", "err", err)
		return
	}
	if err := s.cfg.Bus.Publish(ctx, to, bus.Message{Frame: b}); err != nil {
		s.log.Warn("failed to publish push", "err", err)
	}
}

func deliveryEvent(d *wire.Delivery) *wire.Event {
	return &wire.Event{Kind: &wire.Event_Delivery{Delivery: d}}
}

func (s *Server) handleCreateGroup(ctx context.Context, dev store.DeviceRef, r *wire.CreateGroup) (*wire.Response, error) {
	g, err := groupID(r.GetGroupId())
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateGroup(ctx, g, dev, s.cfg.Now()); err != nil {
		return nil, err
	}
	// A list read before the group existed (by a commit that failed) may
	// be cached, here or on another server process.
	s.membershipChanged(ctx, []store.GroupID{g})
	return &wire.Response{Kind: &wire.Response_CreateGroup{CreateGroup: &wire.CreateGroupResponse{Epoch: 0}}}, nil
}

func (s *Server) handleSend(ctx context.Context, dev store.DeviceRef, r *wire.Send) (*wire.Response, error) {
	m, err := s.prepareSend(ctx, dev, r)
	if err != nil {
		return nil, err
	}
	seq, err := s.store.AppendMessage(ctx, m)
	return s.sent(seq, err)
}

// startSend is handleSend for a store that appends asynchronously: it
// returns at once and done gets the answer from one of the store's
// goroutines (or this one, if the send is refused early). done must not
// block.
func (s *Server) startSend(ctx context.Context, as store.AsyncAppender, dev store.DeviceRef, r *wire.Send, done func(*wire.Response, error)) {
	m, err := s.prepareSend(ctx, dev, r)
	if err != nil {
		done(nil, err)
		return
	}
	as.AppendMessageAsync(m, func(seq uint64, err error) { done(s.sent(seq, err)) })
}

// prepareSend checks a send and makes the message to append. The entry is
// pushed as soon as the store makes it readable, which with SQLite is while
// the disk is still flushing it: delivery latency does not include the
// fsync. The sender is answered only once the entry is durable. (Before a
// power loss, a member may so receive an entry the server then loses; the
// sender, never answered, sends it again with the same id, and the member
// drops the duplicate.)
func (s *Server) prepareSend(ctx context.Context, dev store.DeviceRef, r *wire.Send) (store.Message, error) {
	g, err := groupID(r.GetGroupId())
	if err != nil {
		return store.Message{}, err
	}
	id, err := messageID(r.GetMessageId())
	if err != nil {
		return store.Message{}, err
	}
	kind, err := logKind(r.GetKind())
	if err != nil {
		return store.Message{}, err
	}
	if len(r.GetData()) == 0 {
		return store.Message{}, invalidArg("data is empty")
	}
	m := store.Message{
		Group: g, ID: id, Epoch: r.GetEpoch(), Kind: kind, Sender: dev, Data: r.GetData(),
		At: s.cfg.Now(), EpochGrace: s.cfg.EpochGrace,
	}
	members, merr := s.members.get(ctx, g)
	if merr == nil && len(members) > 0 {
		epoch, data, at := m.Epoch, m.Data, m.At
		m.Visible = func(seq uint64) {
			s.pushLogEntry(ctx, members, &store.LogEntry{
				Group: g, Seq: seq, ID: id, Epoch: epoch, Kind: kind, Sender: dev, Data: data, CreatedAt: at,
			})
		}
	}
	return m, nil
}

// sent is the answer to a send that the store appended at seq, or refused.
func (s *Server) sent(seq uint64, err error) (*wire.Response, error) {
	if err != nil {
		return nil, err
	}
	s.groupMessages.Inc()
	return &wire.Response{Kind: &wire.Response_Send{Send: &wire.SendResponse{Seq: seq}}}, nil
}

func (s *Server) handleCommit(ctx context.Context, dev store.DeviceRef, r *wire.Commit) (*wire.Response, error) {
	g, err := groupID(r.GetGroupId())
	if err != nil {
		return nil, err
	}
	id, err := messageID(r.GetMessageId())
	if err != nil {
		return nil, err
	}
	if len(r.GetCommit()) == 0 {
		return nil, invalidArg("commit is empty")
	}
	now := s.cfg.Now()
	c := store.Commit{Group: g, ID: id, Epoch: r.GetEpoch(), Sender: dev, Data: r.GetCommit(), At: now}
	added := make(map[store.DeviceRef]bool, len(r.GetAdded()))
	for _, a := range r.GetAdded() {
		ref, err := deviceRef(a)
		if err != nil {
			return nil, err
		}
		added[ref] = true
		c.Added = append(c.Added, ref)
	}
	for _, a := range r.GetRemoved() {
		ref, err := deviceRef(a)
		if err != nil {
			return nil, err
		}
		c.Removed = append(c.Removed, ref)
	}
	for _, w := range r.GetWelcomes() {
		ref, err := deviceRef(w.GetDevice())
		if err != nil {
			return nil, err
		}
		if !added[ref] {
			return nil, invalidArg("a welcome is addressed to a device the commit does not add")
		}
		if len(w.GetData()) == 0 {
			return nil, invalidArg("a welcome is empty")
		}
		c.Welcomes = append(c.Welcomes, store.MailboxMessage{To: ref, ID: id, Kind: store.MailWelcome, Data: w.GetData(), At: now})
	}
	before, err := s.members.get(ctx, g)
	if err != nil {
		return nil, err
	}
	seq, err := s.store.AppendCommit(ctx, c)
	if err != nil {
		return nil, err
	}
	s.membershipChanged(ctx, []store.GroupID{g})
	s.metrics.Messages.WithLabelValues("commit").Inc()
	// The members before the commit receive it (removed ones learn of their
	// removal); added devices are woken to fetch their Welcome.
	s.pushLogEntry(ctx, before, &store.LogEntry{
		Group: g, Seq: seq, ID: id, Epoch: c.Epoch, Kind: store.KindCommit, Sender: dev, Data: c.Data, CreatedAt: now,
	})
	s.push(ctx, c.Added, &wire.Event{Kind: &wire.Event_Wake{Wake: &wire.Wake{}}})
	return &wire.Response{Kind: &wire.Response_Commit{Commit: &wire.CommitResponse{Seq: seq, Epoch: c.Epoch + 1}}}, nil
}

func (s *Server) handleMailboxSend(ctx context.Context, dev store.DeviceRef, r *wire.MailboxSend) (*wire.Response, error) {
	items := r.GetItems()
	if len(items) == 0 {
		return nil, invalidArg("no items")
	}
	now := s.cfg.Now()
	for i, it := range items {
		to, err := deviceRef(it.GetTo())
		if err == nil {
			var id store.MessageID
			var kind store.MailKind
			if id, err = messageID(it.GetMessageId()); err == nil {
				if kind, err = mailKind(it.GetKind()); err == nil && len(it.GetData()) == 0 {
					err = invalidArg("data is empty")
				}
			}
			if err == nil {
				var seq uint64
				seq, err = s.store.Deliver(ctx, store.MailboxMessage{To: to, ID: id, Kind: kind, Data: it.GetData(), At: now})
				if err == nil {
					s.metrics.Messages.WithLabelValues("mailbox").Inc()
					s.push(ctx, []store.DeviceRef{to}, deliveryEvent(mailDelivery(store.MailboxEntry{
						To: to, Seq: seq, ID: id, Kind: kind, Data: it.GetData(), CreatedAt: now,
					})))
					continue
				}
			}
		}
		e := s.wireError(s.log, "mailbox_send", err)
		out := wire.NewError(e.GetCode(), "item %d of %d: %s (the items before it were stored; resending them is harmless)", i+1, len(items), e.GetMessage())
		return nil, out
	}
	return &wire.Response{Kind: &wire.Response_MailboxSend{MailboxSend: &wire.MailboxSendResponse{Count: uint32(len(items))}}}, nil
}

// fetchBudget keeps a FetchResponse well under the frame limit.
const fetchBudget = wire.MaxFrameSize - 64<<10

func deliverySize(d *wire.Delivery) int { return len(d.Data) + len(d.GroupId) + 128 }

func (s *Server) handleFetch(ctx context.Context, dev store.DeviceRef, r *wire.Fetch) (*wire.Response, error) {
	limit := int(r.GetLimit())
	if limit == 0 {
		limit = s.cfg.Limits.FetchDefault
	}
	limit = min(limit, wire.MaxFetch, store.MaxReadLimit)
	out := &wire.FetchResponse{}
	size := 0
	add := func(d *wire.Delivery) bool {
		n := deliverySize(d)
		if len(out.Deliveries) >= limit || (len(out.Deliveries) > 0 && size+n > fetchBudget) {
			out.More = true
			return false
		}
		size += n
		out.Deliveries = append(out.Deliveries, d)
		return true
	}
	mail, err := s.store.ReadMailbox(ctx, dev, 0, limit)
	if err != nil {
		return nil, err
	}
	for _, e := range mail {
		if !add(mailDelivery(e)) {
			break
		}
	}
	if len(mail) == limit {
		out.More = true
	}
	if !out.More {
		ms, err := s.store.Memberships(ctx, dev)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.LastSeq <= m.AckedSeq {
				continue
			}
			room := limit - len(out.Deliveries)
			if room <= 0 {
				out.More = true
				break
			}
			entries, err := s.store.ReadGroup(ctx, m.Group, m.AckedSeq, room)
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				if !add(logDelivery(e)) {
					break
				}
			}
			if out.More {
				break
			}
			if len(entries) == room && entries[len(entries)-1].Seq < m.LastSeq {
				out.More = true
				break
			}
		}
	}
	return &wire.Response{Kind: &wire.Response_Fetch{Fetch: out}}, nil
}

func (s *Server) handleAck(ctx context.Context, dev store.DeviceRef, a *wire.Ack, respond bool) (*wire.Response, error) {
	var mail []uint64
	groups := make(map[store.GroupID]uint64)
	for _, ref := range a.GetRefs() {
		if len(ref.GetGroupId()) > 0 {
			g, err := groupID(ref.GetGroupId())
			if err != nil {
				return nil, err
			}
			groups[g] = max(groups[g], ref.GetSeq())
			continue
		}
		if ref.GetMailboxSeq() == 0 {
			return nil, invalidArg("an ack names neither a group entry nor a mailbox entry")
		}
		mail = append(mail, ref.GetMailboxSeq())
	}
	if len(mail) > 0 {
		if err := s.store.AckMailbox(ctx, dev, mail); err != nil {
			return nil, err
		}
	}
	for g, seq := range groups {
		if err := s.store.AckGroup(ctx, dev, g, seq); err != nil {
			return nil, fmt.Errorf("failed to ack group entries: %w", err)
		}
	}
	if !respond {
		return nil, nil
	}
	return &wire.Response{Kind: &wire.Response_Ack{Ack: &wire.AckResponse{Count: uint32(len(a.GetRefs()))}}}, nil
}

func (s *Server) handleUpload(ctx context.Context, dev store.DeviceRef, r *wire.UploadKeyPackages) (*wire.Response, error) {
	pkgs := make([]store.KeyPackage, 0, len(r.GetKeyPackages())+1)
	for _, kp := range r.GetKeyPackages() {
		if len(kp) == 0 {
			return nil, invalidArg("a key package is empty")
		}
		pkgs = append(pkgs, store.KeyPackage{Data: kp})
	}
	if lr := r.GetLastResort(); len(lr) > 0 {
		pkgs = append(pkgs, store.KeyPackage{Data: lr, LastResort: true})
	}
	if len(pkgs) == 0 {
		return nil, invalidArg("no key packages")
	}
	if err := s.store.UploadKeyPackages(ctx, dev, pkgs); err != nil {
		return nil, err
	}
	n, err := s.store.CountKeyPackages(ctx, dev)
	if err != nil {
		return nil, err
	}
	return &wire.Response{Kind: &wire.Response_UploadKeyPackages{UploadKeyPackages: &wire.UploadKeyPackagesResponse{Count: uint32(n)}}}, nil
}

func (s *Server) handleClaim(ctx context.Context, dev store.DeviceRef, r *wire.ClaimKeyPackages) (*wire.Response, error) {
	if err := s.allowLookup(dev); err != nil {
		return nil, err
	}
	account, err := identity.ParseAccountID(r.GetAccountId())
	if err != nil {
		return nil, errNotFound
	}
	claimed, err := s.store.ClaimKeyPackages(ctx, account)
	if err != nil {
		return nil, err
	}
	out := &wire.ClaimKeyPackagesResponse{AccountId: string(account)}
	for _, c := range claimed {
		if len(out.KeyPackages) == wire.MaxDevicesPerAccount {
			break
		}
		out.KeyPackages = append(out.KeyPackages, &wire.ClaimedKeyPackage{DeviceId: c.Device[:], Data: c.Data, LastResort: c.LastResort})
	}
	return &wire.Response{Kind: &wire.Response_ClaimKeyPackages{ClaimKeyPackages: out}}, nil
}

func (s *Server) handleCount(ctx context.Context, dev store.DeviceRef) (*wire.Response, error) {
	n, err := s.store.CountKeyPackages(ctx, dev)
	if err != nil {
		return nil, err
	}
	return &wire.Response{Kind: &wire.Response_CountKeyPackages{CountKeyPackages: &wire.CountKeyPackagesResponse{Count: uint32(n)}}}, nil
}
