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
	current, err := st.extensions()
	if err != nil {
		return nil, err
	}
	var exts []*mlsclientpb.Extension
	var senders []externalSender
	for _, e := range current {
		if e.typ == extExternalSenders {
			if senders, err = parseExternalSenders(e.data); err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
			continue
		}
		exts = append(exts, &mlsclientpb.Extension{ExtensionType: uint32(e.typ), ExtensionData: e.data})
	}
	opts, err := groupOptions(exts)
	if err != nil {
		return nil, err
	}
	for _, es := range append(senders, *added) {
		opts.ExternalSenders = append(opts.ExternalSenders, mls.ExternalSender{
			SignatureKey: mls.SignaturePublicKey(es.signatureKey), Credential: mls.Credential{Identity: es.identity},
		})
	}
	return st.proposed(st.group.ProposeGroupContextExtensions(opts))
}

// extensions returns the group's current group context extensions, read
// from a GroupInfo of our own (package mls has no accessor yet).
func (st *state) extensions() ([]rawExtension, error) {
	gi, err := st.group.GroupInfo(false, false)
	if err != nil {
		return nil, fail("make the group info", err)
	}
	head, err := parseGroupInfoContext(gi)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return head.extensions, nil
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
