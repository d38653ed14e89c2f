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

// sameExtensions reports whether the runner's extensions equal the group's.
func sameExtensions(want []*mlsclientpb.Extension, have []rawExtension) bool {
	if len(want) != len(have) {
		return false
	}
	for i, e := range want {
		if e.GetExtensionType() != uint32(have[i].typ) || !bytes.Equal(e.GetExtensionData(), have[i].data) {
			return false
		}
	}
	return true
}

// CreateBranch starts a subgroup of a group with the members whose
// KeyPackages are given. package mls's Branch keeps the group's extensions
// and decides itself whether the commit has a path, so other extensions
// and force_path are refused (see /work/plans/interop-needs.md item 4).
func (s *Server) CreateBranch(_ context.Context, req *mlsclientpb.CreateBranchRequest) (*mlsclientpb.CreateSubgroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	if req.GetForcePath() {
		return nil, status.Error(codes.Unimplemented, "force_path in a branch: mls.Group.Branch takes no commit options yet")
	}
	if len(req.GetExtensions()) > 0 {
		current, err := st.extensions()
		if err != nil {
			return nil, err
		}
		if !sameExtensions(req.GetExtensions(), current) {
			return nil, status.Error(codes.Unimplemented, "new extensions in a branch: mls.Group.Branch keeps the group's extensions")
		}
	}
	kps, err := parseKeyPackages(st.cfg, req.GetKeyPackages())
	if err != nil {
		return nil, err
	}
	g, welcome, err := st.group.Branch(mls.GroupID(bytes.Clone(req.GetGroupId())), kps)
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
