package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/mls"
)

// maxListedProposals bounds the proposals one request may list.
const maxListedProposals = 1024

// proposed records a proposal message this member sent, and returns it.
func (st *state) proposed(msg []byte, err error) (*mlsclientpb.ProposalResponse, error) {
	if err != nil {
		return nil, fail("make the proposal", err)
	}
	if len(st.own) < maxOwnProposals {
		// Beyond the bound, own proposals are no longer recognised in
		// by_reference lists; no epoch of a real run gets near it.
		st.own[string(msg)] = true
	}
	return &mlsclientpb.ProposalResponse{Proposal: msg}, nil
}

// memberByIdentity finds the leaf of the member with the given identity.
func memberByIdentity(g *mls.Group, identity []byte) (mls.LeafIndex, error) {
	want := mls.Credential{Identity: identity}
	for _, m := range g.Members() {
		if m.Credential.Equal(want) {
			return m.Index, nil
		}
	}
	return 0, status.Errorf(codes.NotFound, "no member with identity %q", identity)
}

// AddProposal proposes adding the owner of a KeyPackage.
func (s *Server) AddProposal(_ context.Context, req *mlsclientpb.AddProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	kp, err := mls.ParseKeyPackage(st.cfg, req.GetKeyPackage())
	if err != nil {
		return nil, fail("parse the key package", err)
	}
	return st.proposed(st.group.ProposeAdd(kp))
}

// UpdateProposal proposes refreshing our own leaf.
func (s *Server) UpdateProposal(_ context.Context, req *mlsclientpb.UpdateProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	return st.proposed(st.group.ProposeUpdate())
}

// RemoveProposal proposes removing the member with the given identity.
func (s *Server) RemoveProposal(_ context.Context, req *mlsclientpb.RemoveProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	leaf, err := memberByIdentity(st.group, req.GetRemovedId())
	if err != nil {
		return nil, err
	}
	return st.proposed(st.group.ProposeRemove(leaf))
}

// ExternalPSKProposal proposes injecting an installed external PSK.
func (s *Server) ExternalPSKProposal(_ context.Context, req *mlsclientpb.ExternalPSKProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	return st.proposed(st.group.ProposePSK(req.GetPskId()))
}

// ResumptionPSKProposal proposes injecting the resumption secret of an
// earlier epoch.
func (s *Server) ResumptionPSKProposal(_ context.Context, req *mlsclientpb.ResumptionPSKProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	return st.proposed(st.group.ProposeResumptionPSK(req.GetEpochId()))
}

// GroupContextExtensionsProposal proposes new group context extensions.
func (s *Server) GroupContextExtensionsProposal(_ context.Context, req *mlsclientpb.GroupContextExtensionsProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	opts, err := groupOptions(req.GetExtensions())
	if err != nil {
		return nil, err
	}
	return st.proposed(st.group.ProposeGroupContextExtensions(opts))
}

// ReInitProposal proposes reinitialising the group.
func (s *Server) ReInitProposal(_ context.Context, req *mlsclientpb.ReInitProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	opts, err := groupOptions(req.GetExtensions())
	if err != nil {
		return nil, err
	}
	if _, err := newConfig(req.GetCipherSuite(), false, nil); err != nil {
		return nil, err
	}
	return st.proposed(st.group.ProposeReInit(mls.GroupID(req.GetGroupId()), mls.CipherSuite(req.GetCipherSuite()), opts))
}

// groupOptions turns the runner's raw extensions into mls.GroupOptions.
// Package mls takes group context extensions only in that structured form
// (see /work/plans/interop-needs.md item 1), so only required_capabilities
// and external_senders can be expressed; other types are refused.
func groupOptions(exts []*mlsclientpb.Extension) (*mls.GroupOptions, error) {
	if len(exts) > maxListItems {
		return nil, status.Errorf(codes.InvalidArgument, "%d extensions", len(exts))
	}
	opts := &mls.GroupOptions{}
	seen := map[uint32]bool{}
	for _, e := range exts {
		if seen[e.GetExtensionType()] {
			return nil, status.Errorf(codes.InvalidArgument, "extension %d listed twice", e.GetExtensionType())
		}
		seen[e.GetExtensionType()] = true
		switch e.GetExtensionType() {
		case uint32(extRequiredCapabilities):
			rc, err := parseRequiredCapabilities(e.GetExtensionData())
			if err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			if len(rc.credentials) > 0 {
				return nil, status.Error(codes.Unimplemented, "required credential types: package mls cannot express them yet")
			}
			opts.RequiredExtensions, opts.RequiredProposals = rc.extensions, rc.proposals
		case uint32(extExternalSenders):
			senders, err := parseExternalSenders(e.GetExtensionData())
			if err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			for _, es := range senders {
				opts.ExternalSenders = append(opts.ExternalSenders, mls.ExternalSender{
					SignatureKey: mls.SignaturePublicKey(es.signatureKey), Credential: mls.Credential{Identity: es.identity},
				})
			}
		default:
			return nil, status.Errorf(codes.Unimplemented, "group context extension type %d: package mls takes no raw extensions yet", e.GetExtensionType())
		}
	}
	return opts, nil
}

// receive processes proposals handed to a member, skipping the ones it
// sent itself.
func (st *state) receive(proposals [][]byte) error {
	if len(proposals) > maxListedProposals {
		return status.Errorf(codes.InvalidArgument, "%d proposals", len(proposals))
	}
	for i, msg := range proposals {
		if st.own[string(msg)] {
			continue
		}
		p, err := st.group.Process(msg)
		if err != nil {
			return fail(fmt.Sprintf("process proposal %d", i), err)
		}
		if p.Kind != mls.KindProposal {
			return status.Errorf(codes.InvalidArgument, "message %d is not a proposal but kind %d", i, p.Kind)
		}
	}
	return nil
}
