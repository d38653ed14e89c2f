package mls

import (
	"bytes"

	"github.com/parley-im/parley/mls/internal/message"
)

// Extension is an MLS extension in its wire form (RFC 9420, Section 13):
// a registered type and its encoded data.
type Extension struct {
	Type uint16
	Data []byte
}

// GroupOptions describe a group's context extensions: for [Create], for
// proposals and commits that replace them, for a ReInit's new group and for
// [Group.Branch].
type GroupOptions struct {
	// ExternalSenders may send proposals to the group from outside.
	ExternalSenders []ExternalSender
	// RequiredExtensions and RequiredProposals, if set, form a
	// required_capabilities extension: extension and proposal types every
	// member must support.
	RequiredExtensions []uint16
	RequiredProposals  []uint16
	// Extensions are further extensions, passed through verbatim after
	// those the fields above make. Known types must decode
	// (external_senders, required_capabilities); ratchet_tree,
	// external_pub and application_id do not belong in a group context;
	// no type may appear twice.
	Extensions []Extension
}

// ExternalSender is a party outside the group allowed to send proposals
// (RFC 9420, Section 12.1.8.1).
type ExternalSender struct {
	SignatureKey SignaturePublicKey
	Credential   Credential
}

// ExternalSendersExtension encodes senders as an external_senders
// extension (RFC 9420, Section 12.1.8.1), for lists of extensions built
// in a chosen order with GroupOptions.Extensions.
func ExternalSendersExtension(senders []ExternalSender) (Extension, error) {
	es := make(message.ExternalSenders, 0, len(senders))
	for _, s := range senders {
		es = append(es, message.ExternalSender{
			SignatureKey: message.SignaturePublicKey(bytes.Clone(s.SignatureKey)),
			Credential:   message.NewBasicCredential(bytes.Clone(s.Credential.Identity)),
		})
	}
	e, err := message.NewExtension(message.ExtensionExternalSenders, es)
	if err != nil {
		return Extension{}, wrapf(ErrMalformed, "%v", err)
	}
	return Extension{Type: uint16(e.Type), Data: e.Data}, nil
}

// ExternalSenders decodes e as an external_senders extension, for example
// one of [Group.Extensions].
func (e Extension) ExternalSenders() ([]ExternalSender, error) {
	if message.ExtensionType(e.Type) != message.ExtensionExternalSenders {
		return nil, wrapf(ErrMalformed, "extension 0x%04x is not external_senders", e.Type)
	}
	es, err := externalSenders(message.Extensions{{Type: message.ExtensionExternalSenders, Data: e.Data}})
	if err != nil {
		return nil, err
	}
	out := make([]ExternalSender, 0, len(es))
	for _, s := range es {
		cred, err := credentialOf(&s.Credential)
		if err != nil {
			return nil, err
		}
		out = append(out, ExternalSender{SignatureKey: SignaturePublicKey(bytes.Clone(s.SignatureKey)), Credential: cred})
	}
	return out, nil
}

// groupExtensions builds group context extensions from opts and validates
// them.
func groupExtensions(opts *GroupOptions) (message.Extensions, error) {
	if opts == nil {
		return nil, nil
	}
	var exts message.Extensions
	if len(opts.ExternalSenders) > 0 {
		e, err := ExternalSendersExtension(opts.ExternalSenders)
		if err != nil {
			return nil, err
		}
		exts = append(exts, message.Extension{Type: message.ExtensionExternalSenders, Data: e.Data})
	}
	if len(opts.RequiredExtensions) > 0 || len(opts.RequiredProposals) > 0 {
		rc := &message.RequiredCapabilities{}
		for _, t := range opts.RequiredExtensions {
			rc.Extensions = append(rc.Extensions, message.ExtensionType(t))
		}
		for _, t := range opts.RequiredProposals {
			rc.Proposals = append(rc.Proposals, message.ProposalType(t))
		}
		e, err := message.NewExtension(message.ExtensionRequiredCapabilities, rc)
		if err != nil {
			return nil, err
		}
		exts = append(exts, e)
	}
	for _, e := range opts.Extensions {
		exts = append(exts, message.Extension{Type: message.ExtensionType(e.Type), Data: bytes.Clone(e.Data)})
	}
	if err := validateGroupExtensions(exts); err != nil {
		return nil, err
	}
	return exts, nil
}

// validateGroupExtensions checks a list of group context extensions: no
// duplicates, no extension that belongs elsewhere, known payloads decode.
func validateGroupExtensions(exts message.Extensions) error {
	if err := exts.Validate(); err != nil {
		return wrapf(ErrInvalidProposal, "group context extensions: %v", err)
	}
	for _, e := range exts {
		switch e.Type {
		case message.ExtensionRatchetTree, message.ExtensionExternalPub, message.ExtensionApplicationID:
			return wrapf(ErrInvalidProposal, "extension 0x%04x does not belong in a group context", uint16(e.Type))
		}
	}
	if _, err := externalSenders(exts); err != nil {
		return err
	}
	var rc message.RequiredCapabilities
	if _, err := message.DecodeExtension(exts, message.ExtensionRequiredCapabilities, &rc); err != nil {
		return wrapf(ErrMalformed, "required_capabilities: %v", err)
	}
	return nil
}

// publicExtensions converts wire extensions to the public form.
func publicExtensions(exts message.Extensions) []Extension {
	out := make([]Extension, 0, len(exts))
	for _, e := range exts {
		out = append(out, Extension{Type: uint16(e.Type), Data: bytes.Clone(e.Data)})
	}
	return out
}

// Extensions returns the group context extensions of the current epoch,
// in order, as they are on the wire.
func (g *Group) Extensions() []Extension { return publicExtensions(g.ep.ctx.Extensions) }

// ReInit describes the group that a reinitialised group continues as
// (RFC 9420, Section 12.1.5).
type ReInit struct {
	// ID is the new group's id and Suite its cipher suite.
	ID    GroupID
	Suite CipherSuite
	// Options are the new group's context extensions (nil for none).
	Options *GroupOptions
}

// proposal returns the ReInit proposal r describes.
func (r *ReInit) proposal() (*message.Proposal, error) {
	if len(r.ID) == 0 {
		return nil, wrapf(ErrInvalidProposal, "ReInit with an empty group id")
	}
	exts, err := groupExtensions(r.Options)
	if err != nil {
		return nil, err
	}
	return &message.Proposal{Type: message.ProposalReInit, ReInit: &message.ReInit{
		GroupID: bytes.Clone(r.ID), Version: message.MLS10, CipherSuite: suiteID(r.Suite), Extensions: exts,
	}}, nil
}

// ReInitParams returns the parameters of the ReInit proposal that the last
// commit applied, once the group is closed by it (see [Group.ReInit]):
// members make key packages for its suite before the new group is created.
// Options carry the new group's extensions verbatim in Options.Extensions.
// ok is false when the group was not reinitialised.
func (g *Group) ReInitParams() (r ReInit, ok bool) {
	if g.status != statusReInit || g.reinit == nil {
		return ReInit{}, false
	}
	r = ReInit{ID: bytes.Clone(g.reinit.GroupID), Suite: CipherSuite(g.reinit.CipherSuite)}
	if len(g.reinit.Extensions) > 0 {
		r.Options = &GroupOptions{Extensions: publicExtensions(g.reinit.Extensions)}
	}
	return r, true
}
