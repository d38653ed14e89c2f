package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/mls"
)

// Proposal types of ProposalDescription.proposal_type.
const (
	descAdd           = "add"
	descRemove        = "remove"
	descExternalPSK   = "externalPSK"
	descResumptionPSK = "resumptionPSK"
	descGCE           = "groupContextExtensions"
	descReInit        = "reinit"
)

// reinitOf describes the group a "reinit" proposal description asks for.
func reinitOf(d *mlsclientpb.ProposalDescription) (*mls.ReInit, error) {
	if _, err := newConfig(d.GetCipherSuite(), false, nil); err != nil {
		return nil, err
	}
	opts, err := groupOptions(d.GetExtensions())
	if err != nil {
		return nil, err
	}
	return &mls.ReInit{ID: mls.GroupID(d.GetGroupId()), Suite: mls.CipherSuite(d.GetCipherSuite()), Options: opts}, nil
}

// commitOptions turns by-value proposal descriptions into CommitOptions.
func (st *state) commitOptions(req *mlsclientpb.CommitRequest) (*mls.CommitOptions, error) {
	if len(req.GetByValue()) > maxListedProposals {
		return nil, status.Errorf(codes.InvalidArgument, "%d proposals by value", len(req.GetByValue()))
	}
	opts := &mls.CommitOptions{ForcePath: req.GetForcePath(), InlineTree: !req.GetExternalTree(), ExternalPub: true}
	for _, d := range req.GetByValue() {
		switch string(d.GetProposalType()) {
		case descAdd:
			kp, err := mls.ParseKeyPackage(st.cfg, d.GetKeyPackage())
			if err != nil {
				return nil, fail("parse the key package", err)
			}
			opts.Add = append(opts.Add, kp)
		case descRemove:
			leaf, err := memberIn(st.group.Members(), d.GetRemovedId())
			if err != nil {
				return nil, err
			}
			opts.Remove = append(opts.Remove, leaf)
		case descExternalPSK:
			opts.ExternalPSKs = append(opts.ExternalPSKs, d.GetPskId())
		case descResumptionPSK:
			opts.ResumptionPSKs = append(opts.ResumptionPSKs, d.GetEpochId())
		case descGCE:
			if opts.Extensions != nil {
				return nil, status.Error(codes.InvalidArgument, "two groupContextExtensions proposals by value")
			}
			exts, err := groupOptions(d.GetExtensions())
			if err != nil {
				return nil, err
			}
			opts.Extensions = exts
		case descReInit:
			if opts.ReInit != nil {
				return nil, status.Error(codes.InvalidArgument, "two reinit proposals by value")
			}
			ri, err := reinitOf(d)
			if err != nil {
				return nil, err
			}
			opts.ReInit = ri
		default:
			return nil, status.Errorf(codes.InvalidArgument, "unknown proposal type %q", d.GetProposalType())
		}
	}
	return opts, nil
}

// commit processes the proposals given by reference and commits them with
// the by-value ones. The new epoch waits for HandlePendingCommit.
func (s *Server) commit(req *mlsclientpb.CommitRequest) (*mlsclientpb.CommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	opts, err := st.commitOptions(req)
	if err != nil {
		return nil, err
	}
	if err := st.receive(req.GetByReference()); err != nil {
		return nil, err
	}
	res, err := st.group.Commit(opts)
	if err != nil {
		return nil, fail("commit", err)
	}
	resp := &mlsclientpb.CommitResponse{Commit: res.Commit, Welcome: res.Welcome}
	if req.GetExternalTree() {
		if resp.RatchetTree, err = st.group.PendingRatchetTree(); err != nil {
			st.group.ClearPendingCommit()
			return nil, fail("encode the new epoch's ratchet tree", err)
		}
	}
	return resp, nil
}

// Commit commits proposals by reference and by value.
func (s *Server) Commit(_ context.Context, req *mlsclientpb.CommitRequest) (*mlsclientpb.CommitResponse, error) {
	return s.commit(req)
}

// ReInitCommit commits a ReInit proposal (given by reference).
func (s *Server) ReInitCommit(_ context.Context, req *mlsclientpb.CommitRequest) (*mlsclientpb.CommitResponse, error) {
	return s.commit(req)
}

// handleCommit processes the proposals and then the commit of another
// member. The caller holds s.mu.
func (st *state) handleCommit(proposals [][]byte, commit []byte) (*mls.CommitInfo, error) {
	if err := st.receive(proposals); err != nil {
		return nil, err
	}
	p, err := st.group.Process(commit)
	if err != nil {
		return nil, fail("process the commit", err)
	}
	if p.Kind != mls.KindCommit {
		return nil, status.Errorf(codes.InvalidArgument, "not a commit but kind %d", p.Kind)
	}
	clear(st.own)
	return p.Commit, nil
}

// HandleCommit applies a commit from another member. The state keeps its
// id: a state is the member's group, whatever its epoch.
func (s *Server) HandleCommit(_ context.Context, req *mlsclientpb.HandleCommitRequest) (*mlsclientpb.HandleCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	if _, err := st.handleCommit(req.GetProposal(), req.GetCommit()); err != nil {
		return nil, err
	}
	return &mlsclientpb.HandleCommitResponse{StateId: req.GetStateId(), EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}

// HandlePendingCommit enters the epoch of our own pending commit.
func (s *Server) HandlePendingCommit(_ context.Context, req *mlsclientpb.HandlePendingCommitRequest) (*mlsclientpb.HandleCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	if err := st.group.MergePendingCommit(); err != nil {
		return nil, fail("merge the pending commit", err)
	}
	clear(st.own)
	return &mlsclientpb.HandleCommitResponse{StateId: req.GetStateId(), EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}
