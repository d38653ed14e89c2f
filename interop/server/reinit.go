package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/mls"
)

// startReInit makes the KeyPackage a member of a reinitialised group
// offers for the new group, and remembers both under a reinit id.
func (s *Server) startReInit(st *state) (*mlsclientpb.HandleReInitCommitResponse, error) {
	params, ok := st.group.ReInitParams()
	if !ok {
		return nil, status.Error(codes.InvalidArgument, "the commit did not reinitialise the group")
	}
	tx, err := newTransaction(uint32(params.Suite), st.cred.Identity)
	if err != nil {
		return nil, err
	}
	tx.psks = st.psks
	tx.cfg.PSK = st.psks.lookup
	ri := &reinitState{old: st, tx: tx}
	id, err := s.add(func(id uint32) { s.reinits[id] = ri })
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.HandleReInitCommitResponse{
		ReinitId: id, KeyPackage: tx.bundle.KeyPackage.Bytes(), EpochAuthenticator: st.group.EpochAuthenticator(),
	}, nil
}

// HandleReInitCommit applies another member's commit of a ReInit proposal.
func (s *Server) HandleReInitCommit(_ context.Context, req *mlsclientpb.HandleCommitRequest) (*mlsclientpb.HandleReInitCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	info, err := st.handleCommit(req.GetProposal(), req.GetCommit())
	if err != nil {
		return nil, err
	}
	if !info.ReInit {
		return nil, status.Error(codes.InvalidArgument, "the commit did not reinitialise the group")
	}
	return s.startReInit(st)
}

// HandlePendingReInitCommit merges our own commit of a ReInit proposal.
func (s *Server) HandlePendingReInitCommit(_ context.Context, req *mlsclientpb.HandlePendingCommitRequest) (*mlsclientpb.HandleReInitCommitResponse, error) {
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
	return s.startReInit(st)
}

// reinit returns the reinitialisation with the given id.
func (s *Server) reinit(id uint32) (*reinitState, error) {
	ri, ok := s.reinits[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no reinitialisation %d", id)
	}
	return ri, nil
}

// ReInitWelcome creates the new group of a reinitialisation with the
// members whose KeyPackages are given.
func (s *Server) ReInitWelcome(_ context.Context, req *mlsclientpb.ReInitWelcomeRequest) (*mlsclientpb.CreateSubgroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ri, err := s.reinit(req.GetReinitId())
	if err != nil {
		return nil, err
	}
	cfg := *ri.tx.cfg
	cfg.EncryptHandshake = ri.old.cfg.EncryptHandshake
	kps, err := parseKeyPackages(&cfg, req.GetKeyPackage())
	if err != nil {
		return nil, err
	}
	g, welcome, err := ri.old.group.ReInit(&cfg, ri.tx.signer, kps, &mls.ResumeOptions{ForcePath: req.GetForcePath(), ExternalTree: req.GetExternalTree()})
	if err != nil {
		return nil, fail("create the reinitialised group", err)
	}
	st := &state{cfg: &cfg, group: g, signer: ri.tx.signer, cred: ri.tx.cred, psks: ri.tx.psks, own: map[string]bool{}}
	return s.subgroup(st, welcome, req.GetExternalTree())
}

// HandleReInitWelcome joins the new group of a reinitialisation.
func (s *Server) HandleReInitWelcome(_ context.Context, req *mlsclientpb.HandleReInitWelcomeRequest) (*mlsclientpb.JoinGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ri, err := s.reinit(req.GetReinitId())
	if err != nil {
		return nil, err
	}
	st, err := s.join(ri.tx, req.GetWelcome(), req.GetRatchetTree(), ri.old.cfg.EncryptHandshake, []*mls.Group{ri.old.group})
	if err != nil {
		return nil, err
	}
	id, err := s.addState(st)
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.JoinGroupResponse{StateId: id, EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}
