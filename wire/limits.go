package wire

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Protocol limits. A frame or field beyond its limit is refused when it is
// decoded, before any handler sees it.
const (
	// MaxFrameSize is the largest encoded Frame.
	MaxFrameSize = 1 << 20
	// MaxMessageSize is the largest WebSocket message (a batch of frames).
	MaxMessageSize = 4 << 20
	// MaxFramesPerMessage bounds the frames in one WebSocket message.
	MaxFramesPerMessage = 4096
	// MaxDataSize is the largest opaque MLS payload (message, commit,
	// welcome, mailbox item).
	MaxDataSize = 512 << 10
	// MaxKeyPackageSize is the largest KeyPackage.
	MaxKeyPackageSize = 16 << 10
	// MaxKeyPackagesPerUpload bounds one UploadKeyPackages request.
	MaxKeyPackagesPerUpload = 64
	// MaxCertificateSize is the largest device certificate.
	MaxCertificateSize = 4 << 10
	// MaxDevicesPerAccount bounds the devices listed for one account.
	MaxDevicesPerAccount = 256
	// MaxGroupIDSize is the largest MLS group id.
	MaxGroupIDSize = 255
	// IDSize is the size of device ids and message ids.
	IDSize = 16
	// AccountIDSize is the length of an account id's text form.
	AccountIDSize = 32
	// MaxUsernameSize is the longest username in bytes.
	MaxUsernameSize = 64
	// MaxClaimSize is the largest signed username claim or release.
	MaxClaimSize = 1 << 10
	// MaxCommitDevices bounds the added, removed and welcomed devices of a commit.
	MaxCommitDevices = 1000
	// MaxMailboxItems bounds one MailboxSend request.
	MaxMailboxItems = 256
	// MaxAckRefs bounds one Ack frame.
	MaxAckRefs = 4096
	// MaxFetch bounds the deliveries of one FetchResponse.
	MaxFetch = 1024
	// MaxVersions bounds the versions offered in Hello.
	MaxVersions = 16
	// MaxShortString bounds short free-form strings (client and server names,
	// invite tokens).
	MaxShortString = 255
	// MaxErrorMessage bounds Error.message.
	MaxErrorMessage = 1 << 10
	// MaxSmallBytes bounds keys, nonces, account signatures and challenges.
	MaxSmallBytes = 64
	// MaxDeviceSignature bounds a device signature (Ed25519 is 64 bytes,
	// an ASN.1 P-256 ECDSA signature up to 72).
	MaxDeviceSignature = 128
)

// fieldLimits maps every bytes, string and repeated field to its limit
// (length in bytes, or number of elements for repeated fields). A field
// missing from this table fails validation, so a new field cannot be added
// to parley.proto without a limit (TestEveryFieldHasLimit checks it).
var fieldLimits = map[protoreflect.FullName]int{
	"parley.wire.v1.DeviceRef.account_id": AccountIDSize,
	"parley.wire.v1.DeviceRef.device_id":  IDSize,

	"parley.wire.v1.Hello.versions": MaxVersions,
	"parley.wire.v1.Hello.client":   MaxShortString,

	"parley.wire.v1.Register.account_public_key": MaxSmallBytes,
	"parley.wire.v1.Register.device_certificate": MaxCertificateSize,
	"parley.wire.v1.Register.pow_challenge":      MaxSmallBytes,
	"parley.wire.v1.Register.pow_nonce":          MaxSmallBytes,
	"parley.wire.v1.Register.invite_token":       MaxShortString,

	"parley.wire.v1.Authenticate.account_id": AccountIDSize,
	"parley.wire.v1.Authenticate.device_id":  IDSize,
	"parley.wire.v1.Authenticate.nonce":      MaxSmallBytes,
	"parley.wire.v1.Authenticate.signature":  MaxDeviceSignature,

	"parley.wire.v1.Lookup.account_id": AccountIDSize,
	"parley.wire.v1.Lookup.username":   MaxUsernameSize,

	"parley.wire.v1.ClaimUsername.claim":       MaxClaimSize,
	"parley.wire.v1.ReleaseUsername.username":  MaxUsernameSize,
	"parley.wire.v1.ReleaseUsername.signature": MaxSmallBytes,

	"parley.wire.v1.UploadKeyPackages.key_packages": MaxKeyPackagesPerUpload,
	"parley.wire.v1.UploadKeyPackages.last_resort":  MaxKeyPackageSize,
	"parley.wire.v1.ClaimKeyPackages.account_id":    AccountIDSize,

	"parley.wire.v1.CreateGroup.group_id": MaxGroupIDSize,

	"parley.wire.v1.WelcomeFor.data": MaxDataSize,

	"parley.wire.v1.Commit.group_id":   MaxGroupIDSize,
	"parley.wire.v1.Commit.message_id": IDSize,
	"parley.wire.v1.Commit.commit":     MaxDataSize,
	"parley.wire.v1.Commit.added":      MaxCommitDevices,
	"parley.wire.v1.Commit.removed":    MaxCommitDevices,
	"parley.wire.v1.Commit.welcomes":   MaxCommitDevices,

	"parley.wire.v1.Send.group_id":   MaxGroupIDSize,
	"parley.wire.v1.Send.message_id": IDSize,
	"parley.wire.v1.Send.data":       MaxDataSize,

	"parley.wire.v1.MailboxItem.message_id": IDSize,
	"parley.wire.v1.MailboxItem.data":       MaxDataSize,
	"parley.wire.v1.MailboxSend.items":      MaxMailboxItems,

	"parley.wire.v1.RevokeDevice.device_id":       IDSize,
	"parley.wire.v1.RevokeDevice.signature":       MaxSmallBytes,
	"parley.wire.v1.DeleteAccount.signature":      MaxSmallBytes,
	"parley.wire.v1.AddDevice.device_certificate": MaxCertificateSize,

	"parley.wire.v1.HelloResponse.server_name": MaxShortString,

	"parley.wire.v1.RegisterChallengeResponse.challenge": MaxSmallBytes,
	"parley.wire.v1.RegisterResponse.account_id":         AccountIDSize,

	"parley.wire.v1.AuthChallengeResponse.nonce":       MaxSmallBytes,
	"parley.wire.v1.AuthChallengeResponse.server_name": MaxShortString,

	"parley.wire.v1.AuthenticateResponse.account_id": AccountIDSize,
	"parley.wire.v1.AuthenticateResponse.device_id":  IDSize,

	"parley.wire.v1.LookupResponse.account_id":          AccountIDSize,
	"parley.wire.v1.LookupResponse.account_public_key":  MaxSmallBytes,
	"parley.wire.v1.LookupResponse.device_certificates": MaxDevicesPerAccount,
	"parley.wire.v1.LookupResponse.username":            MaxUsernameSize,
	"parley.wire.v1.LookupResponse.username_claim":      MaxClaimSize,

	"parley.wire.v1.ClaimUsernameResponse.username": MaxUsernameSize,

	"parley.wire.v1.ClaimedKeyPackage.device_id":           IDSize,
	"parley.wire.v1.ClaimedKeyPackage.data":                MaxKeyPackageSize,
	"parley.wire.v1.ClaimKeyPackagesResponse.account_id":   AccountIDSize,
	"parley.wire.v1.ClaimKeyPackagesResponse.key_packages": MaxDevicesPerAccount,

	"parley.wire.v1.FetchResponse.deliveries": MaxFetch,

	"parley.wire.v1.Delivery.group_id":   MaxGroupIDSize,
	"parley.wire.v1.Delivery.message_id": IDSize,
	"parley.wire.v1.Delivery.data":       MaxDataSize,

	"parley.wire.v1.AckRef.group_id": MaxGroupIDSize,
	"parley.wire.v1.Ack.refs":        MaxAckRefs,

	"parley.wire.v1.Error.message": MaxErrorMessage,
}

// elementLimits bounds the elements of repeated bytes fields.
var elementLimits = map[protoreflect.FullName]int{
	"parley.wire.v1.UploadKeyPackages.key_packages":     MaxKeyPackageSize,
	"parley.wire.v1.LookupResponse.device_certificates": MaxCertificateSize,
}

// LimitError reports a field over its limit.
type LimitError struct {
	Field string // full protobuf field name
	Limit int
	Got   int
}

// Error implements error.
func (e *LimitError) Error() string {
	return fmt.Sprintf("wire: %s is %d, limit %d", e.Field, e.Got, e.Limit)
}

// Unwrap makes errors.Is(err, ErrTooLarge) true.
func (e *LimitError) Unwrap() error { return ErrTooLarge }

// rule is the limit of one field, resolved once per message type.
type rule struct {
	fd      protoreflect.FieldDescriptor
	limit   int  // length, or element count for lists (-1: no limit known)
	elem    int  // element length limit of repeated bytes/strings
	message bool // a message (or list of messages) to descend into
}

// msgRules are the rules of one message type: its plain fields, and its
// oneofs, of which at most one field is set.
type msgRules struct {
	plain  []*rule
	oneofs []protoreflect.OneofDescriptor
	byIdx  []*rule // by field index, for the oneof members
}

// rules returns the rules of every message type of parley.proto, keyed by
// full name; built on first use (after the generated code's init has
// registered the file descriptor) and read-only afterwards.
var rules = sync.OnceValue(buildRules)

func buildRules() map[protoreflect.FullName]*msgRules {
	out := make(map[protoreflect.FullName]*msgRules)
	msgs := File_parley_proto.Messages()
	for i := 0; i < msgs.Len(); i++ {
		md := msgs.Get(i)
		fields := md.Fields()
		mr := &msgRules{byIdx: make([]*rule, fields.Len())}
		for j := 0; j < fields.Len(); j++ {
			fd := fields.Get(j)
			r := &rule{fd: fd, limit: -1, message: fd.Kind() == protoreflect.MessageKind}
			if l, ok := fieldLimits[fd.FullName()]; ok {
				r.limit = l
			}
			r.elem = elementLimits[fd.FullName()]
			needs := fd.IsList() || fd.Kind() == protoreflect.BytesKind || fd.Kind() == protoreflect.StringKind
			if !needs && !r.message {
				continue
			}
			mr.byIdx[j] = r
			if fd.ContainingOneof() == nil {
				mr.plain = append(mr.plain, r)
			}
		}
		oneofs := md.Oneofs()
		for j := 0; j < oneofs.Len(); j++ {
			mr.oneofs = append(mr.oneofs, oneofs.Get(j))
		}
		out[md.FullName()] = mr
	}
	return out
}

// Validate checks every bytes, string and repeated field of m against its
// limit. It returns a *LimitError for the first violation. A message type
// that is not part of parley.proto is refused.
func Validate(m proto.Message) error {
	if f, ok := m.(*Frame); ok && fastValid(f) {
		return nil
	}
	return validate(m.ProtoReflect())
}

func validate(m protoreflect.Message) error {
	mr, ok := rules()[m.Descriptor().FullName()]
	if !ok {
		return &LimitError{Field: string(m.Descriptor().FullName()), Limit: 0, Got: -1}
	}
	for _, r := range mr.plain {
		if m.Has(r.fd) {
			if err := r.check(m.Get(r.fd)); err != nil {
				return err
			}
		}
	}
	for _, od := range mr.oneofs {
		fd := m.WhichOneof(od)
		if fd == nil {
			continue
		}
		if r := mr.byIdx[fd.Index()]; r != nil {
			if err := r.check(m.Get(fd)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *rule) fail(got int) error {
	return &LimitError{Field: string(r.fd.FullName()), Limit: max(r.limit, 0), Got: got}
}

func (r *rule) check(v protoreflect.Value) error {
	if r.fd.IsList() {
		list := v.List()
		if r.limit < 0 || list.Len() > r.limit {
			return r.fail(list.Len())
		}
		for i := 0; i < list.Len(); i++ {
			if err := r.checkOne(list.Get(i), r.elem); err != nil {
				return err
			}
		}
		return nil
	}
	if r.fd.IsMap() {
		return r.fail(v.Map().Len())
	}
	return r.checkOne(v, r.limit)
}

func (r *rule) checkOne(v protoreflect.Value, limit int) error {
	switch r.fd.Kind() {
	case protoreflect.BytesKind:
		if n := len(v.Bytes()); n > limit {
			return &LimitError{Field: string(r.fd.FullName()), Limit: max(limit, 0), Got: n}
		}
	case protoreflect.StringKind:
		if n := len(v.String()); n > limit {
			return &LimitError{Field: string(r.fd.FullName()), Limit: max(limit, 0), Got: n}
		}
	case protoreflect.MessageKind:
		return validate(v.Message())
	}
	return nil
}
