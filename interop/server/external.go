package server

import (
	"bytes"
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/mls"
)

// CreateExternalSigner makes a signature key for a party outside the group
// and returns it as an RFC 9420 ExternalSender.
func (s *Server) CreateExternalSigner(_ context.Context, req *mlsclientpb.CreateExternalSignerRequest) (*mlsclientpb.CreateExternalSignerResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := newConfig(req.GetCipherSuite(), false, pskStore{})
	if err != nil {
		return nil, err
	}
	signer, err := mls.GenerateSigner(cfg)
	if err != nil {
		return nil, fail("generate a signature key", err)
	}
	es := &externalSigner{cfg: cfg, signer: signer, cred: mls.Credential{Identity: bytes.Clone(req.GetIdentity())}}
	id, err := s.add(func(id uint32) { s.signers[id] = es })
	if err != nil {
		return nil, err
	}
	enc := marshalExternalSender(&externalSender{signatureKey: signer.PublicKey(), identity: es.cred.Identity})
	return &mlsclientpb.CreateExternalSignerResponse{SignerId: id, ExternalSender: enc}, nil
}

// AddExternalSigner proposes the group's current extensions with one more
// external sender.
func (s *Server) AddExternalSigner(_ context.Context, req *mlsclientpb.AddExternalSignerRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	added, err := parseExternalSender(req.GetExternalSender())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	opts := &mls.GroupOptions{}
	appended := false
	for _, e := range st.group.Extensions() {
		if e.Type == extExternalSenders {
			senders, err := parseExternalSenders(e.Data)
			if err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
			e.Data = marshalExternalSenders(append(senders, *added))
			appended = true
		}
		opts.Extensions = append(opts.Extensions, e)
	}
	if !appended {
		opts.Extensions = append(opts.Extensions, mls.Extension{Type: extExternalSenders, Data: marshalExternalSenders([]externalSender{*added})})
	}
	return st.proposed(st.group.ProposeGroupContextExtensions(opts))
}

// HandleBranch joins a branch of a group we are a member of, from its
// Welcome.
func (s *Server) HandleBranch(_ context.Context, req *mlsclientpb.HandleBranchRequest) (*mlsclientpb.HandleBranchResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	tx, err := s.transaction(req.GetTransactionId())
	if err != nil {
		return nil, err
	}
	st, err := s.join(tx, req.GetWelcome(), req.GetRatchetTree(), old.cfg.EncryptHandshake, []*mls.Group{old.group})
	if err != nil {
		return nil, err
	}
	id, err := s.addState(st)
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.HandleBranchResponse{StateId: id, EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}

// NewMemberAddProposal makes a KeyPackage and proposes, as that new member,
// to be added to the group a GroupInfo describes.
func (s *Server) NewMemberAddProposal(_ context.Context, req *mlsclientpb.NewMemberAddProposalRequest) (*mlsclientpb.NewMemberAddProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	view, err := readGroupInfo(req.GetGroupInfo(), nil)
	if err != nil {
		return nil, err
	}
	tx, err := newTransaction(uint32(view.CipherSuite), req.GetIdentity())
	if err != nil {
		return nil, err
	}
	msg, err := mls.NewMemberProposal(tx.bundle, view.GroupID, view.Epoch)
	if err != nil {
		return nil, fail("make the new member proposal", err)
	}
	id, err := s.addTransaction(tx)
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.NewMemberAddProposalResponse{
		TransactionId: id, Proposal: msg, InitPriv: tx.bundle.InitPrivateKey(),
		EncryptionPriv: tx.bundle.EncryptionPrivateKey(), SignaturePriv: tx.signer.PrivateKey(),
	}, nil
}

// ExternalSignerProposal signs a proposal as an external sender of the
// group a GroupInfo describes. The signer's index is looked up in the
// group's external_senders extension by its key (the runner leaves
// signer_index at zero); signer_index is used only when the key is not
// listed there.
func (s *Server) ExternalSignerProposal(_ context.Context, req *mlsclientpb.ExternalSignerProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	es, ok := s.signers[req.GetSignerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no external signer %d", req.GetSignerId())
	}
	view, err := readGroupInfo(req.GetGroupInfo(), req.GetRatchetTree())
	if err != nil {
		return nil, err
	}
	if view.CipherSuite != es.cfg.Suite {
		return nil, status.Errorf(codes.InvalidArgument, "signer suite %d, group suite %d", es.cfg.Suite, view.CipherSuite)
	}
	index := req.GetSignerIndex()
	for i, e := range view.ExternalSenders {
		if bytes.Equal(e.SignatureKey, es.signer.PublicKey()) {
			index = uint32(i)
		}
	}
	p := &mls.ExternalProposal{GroupID: view.GroupID, Epoch: view.Epoch}
	d := req.GetDescription()
	switch string(d.GetProposalType()) {
	case descAdd:
		kp, err := mls.ParseKeyPackage(es.cfg, d.GetKeyPackage())
		if err != nil {
			return nil, fail("parse the key package", err)
		}
		p.Add = kp
	case descRemove:
		leaf, err := memberIn(view.Members, d.GetRemovedId())
		if err != nil {
			return nil, err
		}
		p.Remove = &leaf
	case descExternalPSK:
		p.PSK = d.GetPskId()
	case descResumptionPSK:
		epoch := d.GetEpochId()
		p.ResumptionPSK = &epoch
	case descGCE:
		if p.Extensions, err = groupOptions(d.GetExtensions()); err != nil {
			return nil, err
		}
	case descReInit:
		if p.ReInit, err = reinitOf(d); err != nil {
			return nil, err
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown proposal type %q", d.GetProposalType())
	}
	msg, err := mls.ExternalSenderProposal(es.signer, index, p)
	if err != nil {
		return nil, fail("sign the external proposal", err)
	}
	return &mlsclientpb.ProposalResponse{Proposal: msg}, nil
}
