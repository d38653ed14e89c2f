// Package server implements the MLS working group's interop service
// (mls_client.proto, package mlsclientpb) on top of Parley's mls package.
//
// A [Server] keeps every object the test runner refers to by a number in
// memory: group states (mls.Group), transactions (a KeyPackage waiting for
// its Welcome), reinitialisations in progress and external signers. All
// numbers come from one counter, so a number names exactly one object
// (StorePSK takes "a state or a transaction id"). One mutex serialises every
// call: mls.Group is not safe for concurrent use, and the runner drives one
// step at a time anyway.
package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/mls"
)

// Name is the name the service reports.
const Name = "Parley (Go)"

// maxObjects bounds how many live objects (states, transactions, reinits,
// signers) one server keeps, so a runner that never calls Free cannot grow
// memory without limit.
const maxObjects = 100_000

// Bounds on what one client object keeps on the runner's behalf.
const (
	maxPSKs         = 1024
	maxPSKLength    = 4096
	maxOwnProposals = 4096
)

// Server serves the MLSClient interop service.
type Server struct {
	mlsclientpb.UnimplementedMLSClientServer

	mu      sync.Mutex
	next    uint32
	states  map[uint32]*state
	txs     map[uint32]*transaction
	reinits map[uint32]*reinitState
	signers map[uint32]*externalSigner
}

// New returns an empty server.
func New() *Server {
	return &Server{
		states:  map[uint32]*state{},
		txs:     map[uint32]*transaction{},
		reinits: map[uint32]*reinitState{},
		signers: map[uint32]*externalSigner{},
	}
}

// pskStore holds the external PSKs installed for one client state.
type pskStore map[string][]byte

// lookup is the Config.PSK callback; it runs with Server.mu held.
func (p pskStore) lookup(id []byte) ([]byte, bool) {
	s, ok := p[string(id)]
	return s, ok
}

// state is one member's view of a group.
type state struct {
	cfg    *mls.Config
	group  *mls.Group
	signer *mls.Signer
	cred   mls.Credential
	psks   pskStore
	// own holds the proposals this member sent in the current epoch: the
	// runner hands them back in by_reference lists, and a member must not
	// process its own proposal a second time.
	own map[string]bool
}

// transaction is a KeyPackage whose private half waits for a Welcome.
type transaction struct {
	cfg    *mls.Config
	bundle *mls.KeyPackageBundle
	signer *mls.Signer
	cred   mls.Credential
	psks   pskStore
}

// reinitState is a member's group that was reinitialised, with the
// KeyPackage it made for the new group.
type reinitState struct {
	old *state
	tx  *transaction
}

// externalSigner is a party outside the group that signs proposals.
type externalSigner struct {
	cfg    *mls.Config
	signer *mls.Signer
	cred   mls.Credential
}

// supported lists the cipher suites the service offers.
var supported = []mls.CipherSuite{mls.X25519AES128GCM, mls.P256AES128GCM, mls.X25519ChaCha20}

// newConfig returns the mls configuration of one client object.
func newConfig(cs uint32, encrypt bool, psks pskStore) (*mls.Config, error) {
	for _, s := range supported {
		if uint32(s) == cs {
			return &mls.Config{Suite: s, EncryptHandshake: encrypt, PSK: psks.lookup}, nil
		}
	}
	return nil, status.Errorf(codes.InvalidArgument, "unsupported cipher suite %d", cs)
}

// add stores an object under a fresh id. The caller holds s.mu.
func (s *Server) add(put func(id uint32)) (uint32, error) {
	if len(s.states)+len(s.txs)+len(s.reinits)+len(s.signers) >= maxObjects {
		return 0, status.Error(codes.ResourceExhausted, "too many live objects; call Free")
	}
	s.next++
	put(s.next)
	return s.next, nil
}

func (s *Server) addState(st *state) (uint32, error) {
	return s.add(func(id uint32) { s.states[id] = st })
}

func (s *Server) addTransaction(tx *transaction) (uint32, error) {
	return s.add(func(id uint32) { s.txs[id] = tx })
}

// state returns the state with the given id. The caller holds s.mu.
func (s *Server) state(id uint32) (*state, error) {
	st, ok := s.states[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no state %d", id)
	}
	return st, nil
}

// transaction returns the transaction with the given id.
func (s *Server) transaction(id uint32) (*transaction, error) {
	tx, ok := s.txs[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no transaction %d", id)
	}
	return tx, nil
}

// fail turns an error from package mls into a gRPC status naming the
// operation.
func fail(op string, err error) error {
	if _, ok := status.FromError(err); ok && !errors.Is(err, errDecode) {
		return err
	}
	code := codes.InvalidArgument
	switch {
	case errors.Is(err, mls.ErrUnsupported):
		code = codes.Unimplemented
	case errors.Is(err, mls.ErrPendingCommit), errors.Is(err, mls.ErrPendingProposals), errors.Is(err, mls.ErrInactive):
		code = codes.FailedPrecondition
	case errors.Is(err, mls.ErrMissingPSK):
		code = codes.NotFound
	}
	return status.Error(code, fmt.Sprintf("failed to %s: %v", op, err))
}

// Name reports the implementation's name.
func (s *Server) Name(context.Context, *mlsclientpb.NameRequest) (*mlsclientpb.NameResponse, error) {
	return &mlsclientpb.NameResponse{Name: Name}, nil
}

// SupportedCiphersuites lists suites 1, 2 and 3.
func (s *Server) SupportedCiphersuites(context.Context, *mlsclientpb.SupportedCiphersuitesRequest) (*mlsclientpb.SupportedCiphersuitesResponse, error) {
	out := make([]uint32, len(supported))
	for i, cs := range supported {
		out[i] = uint32(cs)
	}
	return &mlsclientpb.SupportedCiphersuitesResponse{Ciphersuites: out}, nil
}

// Free forgets the object with the given id (a state, transaction,
// reinitialisation or signer). Unknown ids are not an error: the runner
// frees every actor's last id, whatever it named.
func (s *Server) Free(_ context.Context, req *mlsclientpb.FreeRequest) (*mlsclientpb.FreeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := req.GetStateId()
	delete(s.states, id)
	delete(s.txs, id)
	delete(s.reinits, id)
	delete(s.signers, id)
	return &mlsclientpb.FreeResponse{}, nil
}

// StorePSK installs an external PSK for a state or a transaction.
func (s *Server) StorePSK(_ context.Context, req *mlsclientpb.StorePSKRequest) (*mlsclientpb.StorePSKResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(req.GetPskId()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "empty PSK id")
	}
	id := req.GetStateOrTransactionId()
	var store pskStore
	if st, ok := s.states[id]; ok {
		store = st.psks
	} else if tx, ok := s.txs[id]; ok {
		store = tx.psks
	} else if ri, ok := s.reinits[id]; ok {
		store = ri.tx.psks
	} else {
		return nil, status.Errorf(codes.NotFound, "no state or transaction %d", id)
	}
	if len(req.GetPskId()) > maxPSKLength || len(req.GetPskSecret()) > maxPSKLength {
		return nil, status.Errorf(codes.InvalidArgument, "PSK id or secret longer than %d bytes", maxPSKLength)
	}
	if _, ok := store[string(req.GetPskId())]; !ok && len(store) >= maxPSKs {
		return nil, status.Errorf(codes.ResourceExhausted, "more than %d PSKs", maxPSKs)
	}
	store[string(req.GetPskId())] = append([]byte(nil), req.GetPskSecret()...)
	return &mlsclientpb.StorePSKResponse{}, nil
}
