package server

import (
	"bytes"
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/mls"
)

// maxExportLength bounds the length of an exported secret.
const maxExportLength = 1 << 16

// CreateGroup starts a group with the caller as its only member.
func (s *Server) CreateGroup(_ context.Context, req *mlsclientpb.CreateGroupRequest) (*mlsclientpb.CreateGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	psks := pskStore{}
	cfg, err := newConfig(req.GetCipherSuite(), req.GetEncryptHandshake(), psks)
	if err != nil {
		return nil, err
	}
	signer, err := mls.GenerateSigner(cfg)
	if err != nil {
		return nil, fail("generate a signature key", err)
	}
	cred := mls.Credential{Identity: bytes.Clone(req.GetIdentity())}
	g, err := mls.Create(cfg, mls.GroupID(bytes.Clone(req.GetGroupId())), cred, signer, nil)
	if err != nil {
		return nil, fail("create the group", err)
	}
	id, err := s.addState(&state{cfg: cfg, group: g, signer: signer, cred: cred, psks: psks, own: map[string]bool{}})
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.CreateGroupResponse{StateId: id}, nil
}

// newTransaction makes a signature key and a KeyPackage for suite cs.
func newTransaction(cs uint32, identity []byte) (*transaction, error) {
	psks := pskStore{}
	cfg, err := newConfig(cs, false, psks)
	if err != nil {
		return nil, err
	}
	signer, err := mls.GenerateSigner(cfg)
	if err != nil {
		return nil, fail("generate a signature key", err)
	}
	cred := mls.Credential{Identity: bytes.Clone(identity)}
	bundle, err := mls.NewKeyPackage(cfg, cred, signer)
	if err != nil {
		return nil, fail("make a key package", err)
	}
	return &transaction{cfg: cfg, bundle: bundle, signer: signer, cred: cred, psks: psks}, nil
}

// CreateKeyPackage makes a KeyPackage and keeps its private half under a
// transaction id until JoinGroup.
func (s *Server) CreateKeyPackage(_ context.Context, req *mlsclientpb.CreateKeyPackageRequest) (*mlsclientpb.CreateKeyPackageResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := newTransaction(req.GetCipherSuite(), req.GetIdentity())
	if err != nil {
		return nil, err
	}
	id, err := s.addTransaction(tx)
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.CreateKeyPackageResponse{
		TransactionId:  id,
		KeyPackage:     tx.bundle.KeyPackage.Bytes(),
		InitPriv:       tx.bundle.InitPrivateKey(),
		EncryptionPriv: tx.bundle.EncryptionPrivateKey(),
		SignaturePriv:  tx.signer.PrivateKey(),
	}, nil
}

// JoinGroup joins a group from a Welcome addressed to a transaction's
// KeyPackage.
func (s *Server) JoinGroup(_ context.Context, req *mlsclientpb.JoinGroupRequest) (*mlsclientpb.JoinGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.transaction(req.GetTransactionId())
	if err != nil {
		return nil, err
	}
	st, err := s.join(tx, req.GetWelcome(), req.GetRatchetTree(), req.GetEncryptHandshake(), nil)
	if err != nil {
		return nil, err
	}
	id, err := s.addState(st)
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.JoinGroupResponse{StateId: id, EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}

// join processes a Welcome for tx; resume lists the groups whose
// resumption secrets it may use.
func (s *Server) join(tx *transaction, welcome, tree []byte, encrypt bool, resume []*mls.Group) (*state, error) {
	cfg := *tx.cfg
	cfg.EncryptHandshake = encrypt
	g, err := mls.Join(&cfg, welcome, tx.bundle, &mls.JoinOptions{RatchetTree: tree, Resume: resume})
	if err != nil {
		return nil, fail("join from the welcome", err)
	}
	return &state{cfg: &cfg, group: g, signer: tx.signer, cred: tx.cred, psks: tx.psks, own: map[string]bool{}}, nil
}

// ExternalJoin joins a group by external commit.
func (s *Server) ExternalJoin(_ context.Context, req *mlsclientpb.ExternalJoinRequest) (*mlsclientpb.ExternalJoinResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(req.GetPsks()) > maxPSKs {
		return nil, status.Errorf(codes.InvalidArgument, "%d PSKs", len(req.GetPsks()))
	}
	view, err := readGroupInfo(req.GetGroupInfo(), req.GetRatchetTree())
	if err != nil {
		return nil, err
	}
	psks := pskStore{}
	cfg, err := newConfig(uint32(view.CipherSuite), req.GetEncryptHandshake(), psks)
	if err != nil {
		return nil, err
	}
	signer, err := mls.GenerateSigner(cfg)
	if err != nil {
		return nil, fail("generate a signature key", err)
	}
	cred := mls.Credential{Identity: bytes.Clone(req.GetIdentity())}
	opts := &mls.ExternalJoinOptions{RatchetTree: req.GetRatchetTree()}
	for _, p := range req.GetPsks() {
		if len(p.GetPskId()) == 0 || len(p.GetPskId()) > maxPSKLength || len(p.GetPskSecret()) > maxPSKLength {
			return nil, status.Error(codes.InvalidArgument, "PSK id empty, or id or secret too long")
		}
		psks[string(p.GetPskId())] = bytes.Clone(p.GetPskSecret())
		opts.PSKs = append(opts.PSKs, bytes.Clone(p.GetPskId()))
	}
	if req.GetRemovePrior() {
		prior, err := memberIn(view.Members, cred.Identity)
		if err != nil {
			return nil, err
		}
		opts.Replace = &prior
	}
	g, commit, err := mls.JoinExternal(cfg, req.GetGroupInfo(), cred, signer, opts)
	if err != nil {
		return nil, fail("join by external commit", err)
	}
	id, err := s.addState(&state{cfg: cfg, group: g, signer: signer, cred: cred, psks: psks, own: map[string]bool{}})
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.ExternalJoinResponse{StateId: id, Commit: commit, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// readGroupInfo decodes and verifies a GroupInfo given by the runner, with
// the group's tree inline or given separately.
func readGroupInfo(gi, tree []byte) (*mls.GroupInfo, error) {
	view, err := mls.ParseGroupInfo(nil, gi, tree)
	if err != nil {
		return nil, fail("read the group info", err)
	}
	return view, nil
}

// memberIn finds the leaf of the member with the given identity.
func memberIn(members []mls.Member, identity []byte) (mls.LeafIndex, error) {
	want := mls.Credential{Identity: identity}
	for _, m := range members {
		if m.Credential.Equal(want) {
			return m.Index, nil
		}
	}
	return 0, status.Errorf(codes.NotFound, "no member with identity %q", identity)
}

// GroupInfo returns a signed GroupInfo that allows external joins, with the
// ratchet tree inline or separately.
func (s *Server) GroupInfo(_ context.Context, req *mlsclientpb.GroupInfoRequest) (*mlsclientpb.GroupInfoResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	gi, err := st.group.GroupInfo(true, !req.GetExternalTree())
	if err != nil {
		return nil, fail("make the group info", err)
	}
	resp := &mlsclientpb.GroupInfoResponse{GroupInfo: gi}
	if req.GetExternalTree() {
		if resp.RatchetTree, err = st.group.RatchetTree(); err != nil {
			return nil, fail("encode the ratchet tree", err)
		}
	}
	return resp, nil
}

// StateAuth returns the epoch authenticator.
func (s *Server) StateAuth(_ context.Context, req *mlsclientpb.StateAuthRequest) (*mlsclientpb.StateAuthResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.StateAuthResponse{StateAuthSecret: st.group.EpochAuthenticator()}, nil
}

// Export derives a secret with the MLS exporter.
func (s *Server) Export(_ context.Context, req *mlsclientpb.ExportRequest) (*mlsclientpb.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	if req.GetKeyLength() > maxExportLength {
		return nil, status.Errorf(codes.InvalidArgument, "key length %d above %d", req.GetKeyLength(), maxExportLength)
	}
	out, err := st.group.Export(req.GetLabel(), req.GetContext(), int(req.GetKeyLength()))
	if err != nil {
		return nil, fail("export a secret", err)
	}
	return &mlsclientpb.ExportResponse{ExportedSecret: out}, nil
}

// Protect encrypts application data.
func (s *Server) Protect(_ context.Context, req *mlsclientpb.ProtectRequest) (*mlsclientpb.ProtectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	ct, err := st.group.Encrypt(req.GetPlaintext(), req.GetAuthenticatedData())
	if err != nil {
		return nil, fail("protect application data", err)
	}
	return &mlsclientpb.ProtectResponse{Ciphertext: ct}, nil
}

// Unprotect decrypts an application message.
func (s *Server) Unprotect(_ context.Context, req *mlsclientpb.UnprotectRequest) (*mlsclientpb.UnprotectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	p, err := st.group.Process(req.GetCiphertext())
	if err != nil {
		return nil, fail("unprotect the message", err)
	}
	if p.Kind != mls.KindApplication {
		return nil, status.Errorf(codes.InvalidArgument, "not an application message but kind %d", p.Kind)
	}
	return &mlsclientpb.UnprotectResponse{AuthenticatedData: p.AuthenticatedData, Plaintext: p.Application}, nil
}
