package message

// ProtocolVersion is an MLS protocol version (RFC 9420, Section 6).
type ProtocolVersion uint16

// MLS10 is the only protocol version defined by RFC 9420.
const MLS10 ProtocolVersion = 1

// CredentialType names a kind of credential ("MLS Credential Types"
// registry).
type CredentialType uint16

// Credential types defined by RFC 9420.
const (
	CredentialBasic CredentialType = 0x0001
	CredentialX509  CredentialType = 0x0002
)

// ExtensionType names an extension ("MLS Extension Types" registry).
type ExtensionType uint16

// Extension types defined by RFC 9420.
const (
	ExtensionApplicationID        ExtensionType = 0x0001
	ExtensionRatchetTree          ExtensionType = 0x0002
	ExtensionRequiredCapabilities ExtensionType = 0x0003
	ExtensionExternalPub          ExtensionType = 0x0004
	ExtensionExternalSenders      ExtensionType = 0x0005
)

// IsDefault reports whether t is one of the extension types that every
// client supports and that capabilities must not list (RFC 9420, Section
// 7.2).
func (t ExtensionType) IsDefault() bool {
	return t >= ExtensionApplicationID && t <= ExtensionExternalSenders
}

// ProposalType names a kind of proposal ("MLS Proposal Types" registry).
type ProposalType uint16

// Proposal types defined by RFC 9420.
const (
	ProposalAdd                    ProposalType = 0x0001
	ProposalUpdate                 ProposalType = 0x0002
	ProposalRemove                 ProposalType = 0x0003
	ProposalPSK                    ProposalType = 0x0004
	ProposalReInit                 ProposalType = 0x0005
	ProposalExternalInit           ProposalType = 0x0006
	ProposalGroupContextExtensions ProposalType = 0x0007
)

// IsDefault reports whether t is one of the proposal types that every
// client supports and that capabilities must not list (RFC 9420, Section
// 7.2).
func (t ProposalType) IsDefault() bool {
	return t >= ProposalAdd && t <= ProposalGroupContextExtensions
}

// LeafNodeSource says how a LeafNode came to be in the tree.
type LeafNodeSource uint8

// Leaf node sources.
const (
	SourceKeyPackage LeafNodeSource = 1
	SourceUpdate     LeafNodeSource = 2
	SourceCommit     LeafNodeSource = 3
)

// NodeType distinguishes leaf and parent nodes in a serialised ratchet tree.
type NodeType uint8

// Node types.
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// ContentType is the kind of content a FramedContent carries.
type ContentType uint8

// Content types.
const (
	ContentApplication ContentType = 1
	ContentProposal    ContentType = 2
	ContentCommit      ContentType = 3
)

func (c ContentType) valid() bool { return c >= ContentApplication && c <= ContentCommit }

// SenderType is the kind of sender of a FramedContent.
type SenderType uint8

// Sender types.
const (
	SenderMember            SenderType = 1
	SenderExternal          SenderType = 2
	SenderNewMemberProposal SenderType = 3
	SenderNewMemberCommit   SenderType = 4
)

// WireFormat is the kind of message an MLSMessage carries ("MLS Wire
// Formats" registry).
type WireFormat uint16

// Wire formats defined by RFC 9420.
const (
	WireFormatPublicMessage  WireFormat = 0x0001
	WireFormatPrivateMessage WireFormat = 0x0002
	WireFormatWelcome        WireFormat = 0x0003
	WireFormatGroupInfo      WireFormat = 0x0004
	WireFormatKeyPackage     WireFormat = 0x0005
)

func (w WireFormat) valid() bool { return w >= WireFormatPublicMessage && w <= WireFormatKeyPackage }

// PSKType is the kind of a pre-shared key.
type PSKType uint8

// PSK types.
const (
	PSKExternal   PSKType = 1
	PSKResumption PSKType = 2
)

// ResumptionPSKUsage says why a resumption PSK is injected.
type ResumptionPSKUsage uint8

// Resumption PSK usages.
const (
	ResumptionApplication ResumptionPSKUsage = 1
	ResumptionReInit      ResumptionPSKUsage = 2
	ResumptionBranch      ResumptionPSKUsage = 3
)

// HPKEPublicKey is a serialised HPKE public key.
type HPKEPublicKey []byte

// SignaturePublicKey is a serialised signature public key.
type SignaturePublicKey []byte

// GroupID is an application-chosen group identifier.
type GroupID []byte

// KeyPackageRef is the hash reference of a KeyPackage (RFC 9420, Section
// 5.2).
type KeyPackageRef []byte

// ProposalRef is the hash reference of a proposal (RFC 9420, Section 5.2).
type ProposalRef []byte
