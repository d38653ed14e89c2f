package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/interop/server"
)

// startServer serves a fresh Server on 127.0.0.1:0 and returns a client.
func startServer(t *testing.T) pb.MLSClientClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterMLSClientServer(srv, server.New())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewMLSClientClient(conn)
}

// runner drives the service the way the working group's test runner does:
// actors are names, each with a state id in the group.
type runner struct {
	t       *testing.T
	c       pb.MLSClientClient
	suite   uint32
	encrypt bool
	state   map[string]uint32
	tx      map[string]uint32
	kp      map[string][]byte
}

func newRunner(t *testing.T, c pb.MLSClientClient, suite uint32, encrypt bool) *runner {
	return &runner{t: t, c: c, suite: suite, encrypt: encrypt, state: map[string]uint32{}, tx: map[string]uint32{}, kp: map[string][]byte{}}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

var ctx = context.Background()

func (r *runner) keyPackage(actor string) []byte {
	resp := must[*pb.CreateKeyPackageResponse](r.t, "CreateKeyPackage "+actor)(
		r.c.CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: r.suite, Identity: []byte(actor)}))
	if len(resp.KeyPackage) == 0 || len(resp.SignaturePriv) == 0 || len(resp.InitPriv) == 0 || len(resp.EncryptionPriv) == 0 {
		r.t.Fatalf("CreateKeyPackage %s: empty key package or private key", actor)
	}
	r.tx[actor] = resp.TransactionId
	r.kp[actor] = resp.KeyPackage
	return resp.KeyPackage
}

// commit has committer commit, merges it, makes members process it and
// joiners join; everyone must agree on the epoch authenticator.
func (r *runner) commit(committer string, req *pb.CommitRequest, members, joiners []string) *pb.CommitResponse {
	r.t.Helper()
	req.StateId = r.state[committer]
	cr := must[*pb.CommitResponse](r.t, "Commit by "+committer)(r.c.Commit(ctx, req))
	if req.ExternalTree != (len(cr.RatchetTree) > 0) {
		r.t.Fatalf("external_tree=%v but ratchet tree of %d bytes", req.ExternalTree, len(cr.RatchetTree))
	}
	hp := must[*pb.HandleCommitResponse](r.t, "HandlePendingCommit "+committer)(
		r.c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: r.state[committer]}))
	r.state[committer] = hp.StateId
	want := hp.EpochAuthenticator
	for _, m := range members {
		resp := must[*pb.HandleCommitResponse](r.t, "HandleCommit "+m)(
			r.c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: r.state[m], Proposal: req.ByReference, Commit: cr.Commit}))
		r.state[m] = resp.StateId
		if !bytes.Equal(resp.EpochAuthenticator, want) {
			r.t.Fatalf("%s disagrees with %s on the epoch authenticator", m, committer)
		}
	}
	for _, j := range joiners {
		resp := must[*pb.JoinGroupResponse](r.t, "JoinGroup "+j)(r.c.JoinGroup(ctx, &pb.JoinGroupRequest{
			TransactionId: r.tx[j], Welcome: cr.Welcome, EncryptHandshake: r.encrypt, Identity: []byte(j), RatchetTree: cr.RatchetTree,
		}))
		r.state[j] = resp.StateId
		if !bytes.Equal(resp.EpochAuthenticator, want) {
			r.t.Fatalf("joiner %s disagrees with %s on the epoch authenticator", j, committer)
		}
	}
	return cr
}

// agree checks that all actors have the same state auth and exporter
// output.
func (r *runner) agree(actors ...string) {
	r.t.Helper()
	var auth, exp []byte
	for i, a := range actors {
		sa := must[*pb.StateAuthResponse](r.t, "StateAuth "+a)(r.c.StateAuth(ctx, &pb.StateAuthRequest{StateId: r.state[a]}))
		ex := must[*pb.ExportResponse](r.t, "Export "+a)(r.c.Export(ctx, &pb.ExportRequest{
			StateId: r.state[a], Label: "interop test", Context: []byte{1, 2, 3, 4}, KeyLength: 32}))
		if len(ex.ExportedSecret) != 32 || len(sa.StateAuthSecret) == 0 {
			r.t.Fatalf("%s: export of %d bytes, state auth of %d", a, len(ex.ExportedSecret), len(sa.StateAuthSecret))
		}
		if i == 0 {
			auth, exp = sa.StateAuthSecret, ex.ExportedSecret
			continue
		}
		if !bytes.Equal(auth, sa.StateAuthSecret) || !bytes.Equal(exp, ex.ExportedSecret) {
			r.t.Fatalf("%s disagrees with %s on state auth or exported secret", a, actors[0])
		}
	}
}

// message has from protect a message that every one of to unprotects.
func (r *runner) message(from string, to ...string) {
	r.t.Helper()
	pt := []byte(fmt.Sprintf("hello from %s", from))
	aad := []byte("aad " + from)
	ct := must[*pb.ProtectResponse](r.t, "Protect "+from)(r.c.Protect(ctx, &pb.ProtectRequest{
		StateId: r.state[from], AuthenticatedData: aad, Plaintext: pt}))
	for _, m := range to {
		resp := must[*pb.UnprotectResponse](r.t, "Unprotect "+m)(r.c.Unprotect(ctx, &pb.UnprotectRequest{
			StateId: r.state[m], Ciphertext: ct.Ciphertext}))
		if !bytes.Equal(resp.Plaintext, pt) || !bytes.Equal(resp.AuthenticatedData, aad) {
			r.t.Fatalf("%s read %q/%q from %s", m, resp.Plaintext, resp.AuthenticatedData, from)
		}
	}
}

func (r *runner) proposal(what string) func(*pb.ProposalResponse, error) []byte {
	return func(p *pb.ProposalResponse, err error) []byte {
		r.t.Helper()
		if err != nil {
			r.t.Fatalf("%s: %v", what, err)
		}
		if len(p.Proposal) == 0 {
			r.t.Fatalf("%s: empty proposal", what)
		}
		return p.Proposal
	}
}

func addDesc(kp []byte) *pb.ProposalDescription {
	return &pb.ProposalDescription{ProposalType: []byte("add"), KeyPackage: kp}
}

func TestNameAndSuites(t *testing.T) {
	c := startServer(t)
	n := must[*pb.NameResponse](t, "Name")(c.Name(ctx, &pb.NameRequest{}))
	if n.Name == "" {
		t.Fatal("empty name")
	}
	s := must[*pb.SupportedCiphersuitesResponse](t, "SupportedCiphersuites")(c.SupportedCiphersuites(ctx, &pb.SupportedCiphersuitesRequest{}))
	if fmt.Sprint(s.Ciphersuites) != "[1 2 3]" {
		t.Fatalf("suites %v, want [1 2 3]", s.Ciphersuites)
	}
}

// TestScenario runs a whole group life through the gRPC interface for
// every supported suite, with handshake messages public and private.
func TestScenario(t *testing.T) {
	c := startServer(t)
	for _, suite := range []uint32{1, 2, 3} {
		for _, encrypt := range []bool{false, true} {
			t.Run(fmt.Sprintf("suite=%d/encrypt=%v", suite, encrypt), func(t *testing.T) {
				scenario(t, newRunner(t, c, suite, encrypt))
			})
		}
	}
}

func scenario(t *testing.T, r *runner) {
	c := r.c
	// alice creates the group and adds bob by value; bob joins by Welcome.
	cg := must[*pb.CreateGroupResponse](t, "CreateGroup")(c.CreateGroup(ctx, &pb.CreateGroupRequest{
		GroupId: []byte(fmt.Sprintf("group-%d-%v", r.suite, r.encrypt)), CipherSuite: r.suite, EncryptHandshake: r.encrypt, Identity: []byte("alice")}))
	r.state["alice"] = cg.StateId
	r.commit("alice", &pb.CommitRequest{ByValue: []*pb.ProposalDescription{addDesc(r.keyPackage("bob"))}}, nil, []string{"bob"})
	r.agree("alice", "bob")
	r.message("alice", "bob")
	r.message("bob", "alice")

	// bob proposes adding charlie; alice commits it by reference with the
	// tree sent separately.
	add := r.proposal("AddProposal")(c.AddProposal(ctx, &pb.AddProposalRequest{StateId: r.state["bob"], KeyPackage: r.keyPackage("charlie")}))
	r.commit("alice", &pb.CommitRequest{ByReference: [][]byte{add}, ExternalTree: true}, []string{"bob"}, []string{"charlie"})
	r.agree("alice", "bob", "charlie")
	r.message("charlie", "alice", "bob")

	// charlie updates; bob commits.
	upd := r.proposal("UpdateProposal")(c.UpdateProposal(ctx, &pb.UpdateProposalRequest{StateId: r.state["charlie"]}))
	r.commit("bob", &pb.CommitRequest{ByReference: [][]byte{upd}}, []string{"alice", "charlie"}, nil)
	r.agree("alice", "bob", "charlie")

	// An empty commit with a forced path, which the committer applies by
	// handling its own commit (as older runners do) instead of
	// HandlePendingCommit.
	own := must[*pb.CommitResponse](t, "Commit")(c.Commit(ctx, &pb.CommitRequest{StateId: r.state["charlie"], ForcePath: true}))
	for _, m := range []string{"charlie", "alice", "bob"} {
		must[*pb.HandleCommitResponse](t, "HandleCommit "+m)(c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: r.state[m], Commit: own.Commit}))
	}
	r.agree("alice", "bob", "charlie")

	// alice removes bob by value; bob can no longer read the group.
	removedBob := r.state["bob"]
	rm := r.proposal("RemoveProposal")(c.RemoveProposal(ctx, &pb.RemoveProposalRequest{StateId: r.state["charlie"], RemovedId: []byte("bob")}))
	cr := must[*pb.CommitResponse](t, "Commit")(c.Commit(ctx, &pb.CommitRequest{StateId: r.state["alice"], ByReference: [][]byte{rm}}))
	must[*pb.HandleCommitResponse](t, "HandlePendingCommit")(c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: r.state["alice"]}))
	for _, m := range []string{"charlie", "bob"} {
		must[*pb.HandleCommitResponse](t, "HandleCommit "+m)(c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: r.state[m], Proposal: [][]byte{rm}, Commit: cr.Commit}))
	}
	if _, err := c.Protect(ctx, &pb.ProtectRequest{StateId: removedBob, Plaintext: []byte("x")}); err == nil {
		t.Fatal("removed bob can still send")
	}
	r.agree("alice", "charlie")
	if _, err := c.Commit(ctx, &pb.CommitRequest{StateId: r.state["charlie"],
		ByValue: []*pb.ProposalDescription{{ProposalType: []byte("remove"), RemovedId: []byte("bob")}}}); status.Code(err) != codes.NotFound {
		t.Fatalf("removing bob twice: %v, want NotFound", err)
	}
	ct := must[*pb.ProtectResponse](t, "Protect")(c.Protect(ctx, &pb.ProtectRequest{StateId: r.state["alice"], Plaintext: []byte("secret")}))
	if _, err := c.Unprotect(ctx, &pb.UnprotectRequest{StateId: removedBob, Ciphertext: ct.Ciphertext}); err == nil {
		t.Fatal("removed bob decrypted a message sent after his removal")
	}
	r.message("charlie", "alice")

	// dave joins by external commit, tree sent separately.
	r.externalJoin("alice", "dave", true, false, []string{"charlie"})
	r.agree("alice", "charlie", "dave")
	r.message("dave", "alice", "charlie")

	// charlie rejoins by external commit, replacing its old leaf.
	r.externalJoin("dave", "charlie", false, true, []string{"alice"})
	r.agree("alice", "charlie", "dave")
	r.message("charlie", "alice", "dave")

	// An external PSK, installed everywhere, proposed by dave, committed
	// by alice.
	pskID, secret := []byte("psk-id-"+fmt.Sprint(r.suite)), []byte("0123456789abcdef0123456789abcdef")
	for _, a := range []string{"alice", "charlie", "dave"} {
		must[*pb.StorePSKResponse](t, "StorePSK")(c.StorePSK(ctx, &pb.StorePSKRequest{StateOrTransactionId: r.state[a], PskId: pskID, PskSecret: secret}))
	}
	psk := r.proposal("ExternalPSKProposal")(c.ExternalPSKProposal(ctx, &pb.ExternalPSKProposalRequest{StateId: r.state["dave"], PskId: pskID}))
	r.commit("alice", &pb.CommitRequest{ByReference: [][]byte{psk}}, []string{"charlie", "dave"}, nil)
	r.agree("alice", "charlie", "dave")

	// frank joins by external commit injecting the external PSK.
	r.externalJoinPSK("alice", "frank", pskID, secret, []string{"charlie", "dave"})
	r.agree("alice", "charlie", "dave", "frank")

	// A resumption PSK of the current epoch (the one frank joined in), proposed and committed by
	// charlie (who must skip its own proposal in the by-reference list).
	epoch := r.epoch("charlie")
	res := r.proposal("ResumptionPSKProposal")(c.ResumptionPSKProposal(ctx, &pb.ResumptionPSKProposalRequest{StateId: r.state["charlie"], EpochId: epoch}))
	r.commit("charlie", &pb.CommitRequest{ByReference: [][]byte{res}}, []string{"alice", "dave", "frank"}, nil)
	r.agree("alice", "charlie", "dave", "frank")

	// The same by value: an external PSK, a resumption PSK and new group
	// context extensions (required_capabilities with empty lists) in one
	// commit by dave.
	r.commit("dave", &pb.CommitRequest{ByValue: []*pb.ProposalDescription{
		{ProposalType: []byte("externalPSK"), PskId: pskID},
		{ProposalType: []byte("resumptionPSK"), EpochId: epoch},
		{ProposalType: []byte("groupContextExtensions"), Extensions: []*pb.Extension{{ExtensionType: 3, ExtensionData: []byte{0, 0, 0}}, {ExtensionType: 5, ExtensionData: []byte{0}}}},
	}}, []string{"alice", "charlie", "frank"}, nil)
	r.agree("alice", "charlie", "dave", "frank")

	// eve becomes an external signer through a GroupContextExtensions
	// proposal.
	es := must[*pb.CreateExternalSignerResponse](t, "CreateExternalSigner")(c.CreateExternalSigner(ctx, &pb.CreateExternalSignerRequest{CipherSuite: r.suite, Identity: []byte("eve")}))
	gce := r.proposal("AddExternalSigner")(c.AddExternalSigner(ctx, &pb.AddExternalSignerRequest{StateId: r.state["dave"], ExternalSender: es.ExternalSender}))
	r.commit("alice", &pb.CommitRequest{ByReference: [][]byte{gce}}, []string{"charlie", "dave", "frank"}, nil)
	r.agree("alice", "charlie", "dave", "frank")
	r.message("alice", "charlie", "dave", "frank")

	// Free releases states; a freed state is gone.
	must[*pb.FreeResponse](t, "Free")(c.Free(ctx, &pb.FreeRequest{StateId: removedBob}))
	if _, err := c.StateAuth(ctx, &pb.StateAuthRequest{StateId: removedBob}); status.Code(err) != codes.NotFound {
		t.Fatalf("StateAuth of a freed state: %v, want NotFound", err)
	}
}

// epoch counts the epochs of an actor's group by the GroupInfo it makes.
func (r *runner) epoch(actor string) uint64 {
	r.t.Helper()
	gi := must[*pb.GroupInfoResponse](r.t, "GroupInfo")(r.c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: r.state[actor]}))
	// MLSMessage header (4 bytes), version and suite (4), group id.
	b := gi.GroupInfo[8:]
	n := int(b[0] & 0x3f)
	if b[0]>>6 != 0 {
		r.t.Fatal("test expects a group id shorter than 64 bytes")
	}
	b = b[1+n:]
	var e uint64
	for _, x := range b[:8] {
		e = e<<8 | uint64(x)
	}
	return e
}

// externalJoinPSK has joiner join by external commit with an external PSK
// that the members hold.
func (r *runner) externalJoinPSK(member, joiner string, id, secret []byte, others []string) {
	r.t.Helper()
	gi := must[*pb.GroupInfoResponse](r.t, "GroupInfo")(r.c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: r.state[member]}))
	ej := must[*pb.ExternalJoinResponse](r.t, "ExternalJoin "+joiner)(r.c.ExternalJoin(ctx, &pb.ExternalJoinRequest{
		GroupInfo: gi.GroupInfo, EncryptHandshake: r.encrypt, Identity: []byte(joiner), Psks: []*pb.PreSharedKey{{PskId: id, PskSecret: secret}}}))
	r.state[joiner] = ej.StateId
	for _, m := range append([]string{member}, others...) {
		resp := must[*pb.HandleCommitResponse](r.t, "HandleCommit "+m)(r.c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: r.state[m], Commit: ej.Commit}))
		if !bytes.Equal(resp.EpochAuthenticator, ej.EpochAuthenticator) {
			r.t.Fatalf("%s disagrees with external joiner %s", m, joiner)
		}
	}
}

// externalJoin has joiner join by external commit from member's GroupInfo;
// the member and others process the commit.
func (r *runner) externalJoin(member, joiner string, externalTree, removePrior bool, others []string) {
	r.t.Helper()
	gi := must[*pb.GroupInfoResponse](r.t, "GroupInfo")(r.c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: r.state[member], ExternalTree: externalTree}))
	if externalTree != (len(gi.RatchetTree) > 0) {
		r.t.Fatalf("external_tree=%v but tree of %d bytes", externalTree, len(gi.RatchetTree))
	}
	ej := must[*pb.ExternalJoinResponse](r.t, "ExternalJoin "+joiner)(r.c.ExternalJoin(ctx, &pb.ExternalJoinRequest{
		GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, EncryptHandshake: r.encrypt, Identity: []byte(joiner), RemovePrior: removePrior}))
	prior, hadPrior := r.state[joiner]
	r.state[joiner] = ej.StateId
	for _, m := range append([]string{member}, others...) {
		resp := must[*pb.HandleCommitResponse](r.t, "HandleCommit "+m)(r.c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: r.state[m], Commit: ej.Commit}))
		if !bytes.Equal(resp.EpochAuthenticator, ej.EpochAuthenticator) {
			r.t.Fatalf("%s disagrees with external joiner %s", m, joiner)
		}
	}
	if hadPrior && removePrior {
		r.c.Free(ctx, &pb.FreeRequest{StateId: prior})
	}
}

// TestRefusals checks that bad requests get the right status codes and
// change nothing.
func TestRefusals(t *testing.T) {
	c := startServer(t)
	code := func(err error) codes.Code { return status.Code(err) }
	if _, err := c.CreateGroup(ctx, &pb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 7, Identity: []byte("a")}); code(err) != codes.InvalidArgument {
		t.Fatalf("suite 7: %v", err)
	}
	if _, err := c.StateAuth(ctx, &pb.StateAuthRequest{StateId: 99}); code(err) != codes.NotFound {
		t.Fatalf("unknown state: %v", err)
	}
	if _, err := c.JoinGroup(ctx, &pb.JoinGroupRequest{TransactionId: 99}); code(err) != codes.NotFound {
		t.Fatalf("unknown transaction: %v", err)
	}
	if _, err := c.StorePSK(ctx, &pb.StorePSKRequest{StateOrTransactionId: 99, PskId: []byte("x")}); code(err) != codes.NotFound {
		t.Fatalf("PSK for unknown id: %v", err)
	}
	cg := must[*pb.CreateGroupResponse](t, "CreateGroup")(c.CreateGroup(ctx, &pb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 1, Identity: []byte("a")}))
	before := must[*pb.StateAuthResponse](t, "StateAuth")(c.StateAuth(ctx, &pb.StateAuthRequest{StateId: cg.StateId}))
	if _, err := c.Unprotect(ctx, &pb.UnprotectRequest{StateId: cg.StateId, Ciphertext: []byte{0, 1, 0, 2, 0xff}}); code(err) != codes.InvalidArgument {
		t.Fatalf("garbage ciphertext: %v", err)
	}
	if _, err := c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: cg.StateId, Commit: []byte("junk")}); code(err) != codes.InvalidArgument {
		t.Fatalf("garbage commit: %v", err)
	}
	if _, err := c.AddProposal(ctx, &pb.AddProposalRequest{StateId: cg.StateId, KeyPackage: []byte("junk")}); code(err) != codes.InvalidArgument {
		t.Fatalf("garbage key package: %v", err)
	}
	if _, err := c.Commit(ctx, &pb.CommitRequest{StateId: cg.StateId, ByValue: []*pb.ProposalDescription{{ProposalType: []byte("bogus")}}}); code(err) != codes.InvalidArgument {
		t.Fatalf("unknown proposal type: %v", err)
	}
	if _, err := c.Export(ctx, &pb.ExportRequest{StateId: cg.StateId, KeyLength: 1 << 20}); code(err) != codes.InvalidArgument {
		t.Fatalf("huge export: %v", err)
	}
	if _, err := c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: cg.StateId}); code(err) != codes.FailedPrecondition {
		t.Fatalf("merge without a pending commit: %v", err)
	}
	after := must[*pb.StateAuthResponse](t, "StateAuth")(c.StateAuth(ctx, &pb.StateAuthRequest{StateId: cg.StateId}))
	if !bytes.Equal(before.StateAuthSecret, after.StateAuthSecret) {
		t.Fatal("refused requests changed the group")
	}
}
