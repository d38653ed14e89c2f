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
	leaf, err := memberIn(st.group.Members(), req.GetRemovedId())
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

// groupOptions passes the runner's extensions to package mls verbatim;
// mls validates them.
func groupOptions(exts []*mlsclientpb.Extension) (*mls.GroupOptions, error) {
	if len(exts) > maxListItems {
		return nil, status.Errorf(codes.InvalidArgument, "%d extensions", len(exts))
	}
	opts := &mls.GroupOptions{}
	for _, e := range exts {
		if e.GetExtensionType() > 0xffff {
			return nil, status.Errorf(codes.InvalidArgument, "extension type %d", e.GetExtensionType())
		}
		opts.Extensions = append(opts.Extensions, mls.Extension{Type: uint16(e.GetExtensionType()), Data: e.GetExtensionData()})
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
