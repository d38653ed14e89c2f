package server

import (
	"bytes"
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/mls"
)

// parseKeyPackages decodes the key packages of a new subgroup.
func parseKeyPackages(cfg *mls.Config, raw [][]byte) ([]*mls.KeyPackage, error) {
	if len(raw) > maxListedProposals {
		return nil, status.Errorf(codes.InvalidArgument, "%d key packages", len(raw))
	}
	kps := make([]*mls.KeyPackage, 0, len(raw))
	for _, data := range raw {
		kp, err := mls.ParseKeyPackage(cfg, data)
		if err != nil {
			return nil, fail("parse a key package", err)
		}
		kps = append(kps, kp)
	}
	return kps, nil
}

// CreateBranch starts a subgroup of a group with the members whose
// KeyPackages are given.
func (s *Server) CreateBranch(_ context.Context, req *mlsclientpb.CreateBranchRequest) (*mlsclientpb.CreateSubgroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	opts := &mls.ResumeOptions{ForcePath: req.GetForcePath(), ExternalTree: req.GetExternalTree()}
	if len(req.GetExtensions()) > 0 {
		if opts.Extensions, err = groupOptions(req.GetExtensions()); err != nil {
			return nil, err
		}
	}
	kps, err := parseKeyPackages(st.cfg, req.GetKeyPackages())
	if err != nil {
		return nil, err
	}
	g, welcome, err := st.group.Branch(mls.GroupID(bytes.Clone(req.GetGroupId())), kps, opts)
	if err != nil {
		return nil, fail("branch the group", err)
	}
	return s.subgroup(&state{cfg: st.cfg, group: g, signer: st.signer, cred: st.cred, psks: st.psks, own: map[string]bool{}}, welcome, req.GetExternalTree())
}

// subgroup stores the state of a new subgroup and describes it.
func (s *Server) subgroup(st *state, welcome []byte, externalTree bool) (*mlsclientpb.CreateSubgroupResponse, error) {
	resp := &mlsclientpb.CreateSubgroupResponse{Welcome: welcome, EpochAuthenticator: st.group.EpochAuthenticator()}
	if externalTree {
		tree, err := st.group.RatchetTree()
		if err != nil {
			return nil, fail("encode the ratchet tree", err)
		}
		resp.RatchetTree = tree
	}
	id, err := s.addState(st)
	if err != nil {
		return nil, err
	}
	resp.StateId = id
	return resp, nil
}
