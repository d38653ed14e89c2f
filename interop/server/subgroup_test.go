package server_test

import (
	"bytes"
	"fmt"
	"testing"

	pb "github.com/parley-im/parley/interop/mlsclientpb"
)

// TestExternalProposalsAndBranch drives joins by external commit, a
// new-member proposal, an external signer's Add and Remove, and a branch,
// for every supported suite.
func TestExternalProposalsAndBranch(t *testing.T) {
	c := startServer(t)
	for _, suite := range []uint32{1, 2, 3} {
		for _, encrypt := range []bool{false, true} {
			t.Run(fmt.Sprintf("suite=%d/encrypt=%v", suite, encrypt), func(t *testing.T) {
				externalScenario(t, newRunner(t, c, suite, encrypt))
			})
		}
	}
}

func externalScenario(t *testing.T, r *runner) {
	c := r.c
	cg := must[*pb.CreateGroupResponse](t, "CreateGroup")(c.CreateGroup(ctx, &pb.CreateGroupRequest{
		GroupId: []byte(fmt.Sprintf("ext-%d-%v", r.suite, r.encrypt)), CipherSuite: r.suite, EncryptHandshake: r.encrypt, Identity: []byte("alice")}))
	r.state["alice"] = cg.StateId
	r.externalJoin("alice", "bob", false, false, nil)

	// charlie asks to be added (new_member_proposal); alice commits it.
	gi := must[*pb.GroupInfoResponse](t, "GroupInfo")(c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: r.state["alice"]}))
	nm := must[*pb.NewMemberAddProposalResponse](t, "NewMemberAddProposal")(c.NewMemberAddProposal(ctx, &pb.NewMemberAddProposalRequest{
		GroupInfo: gi.GroupInfo, Identity: []byte("charlie")}))
	r.tx["charlie"] = nm.TransactionId
	r.commit("alice", &pb.CommitRequest{ByReference: [][]byte{nm.Proposal}}, []string{"bob"}, []string{"charlie"})
	r.agree("alice", "bob", "charlie")

	// Two external signers, added one after the other: the second
	// GroupContextExtensions proposal must keep the first.
	var signer [2]*pb.CreateExternalSignerResponse
	for i := range signer {
		signer[i] = must[*pb.CreateExternalSignerResponse](t, "CreateExternalSigner")(c.CreateExternalSigner(ctx, &pb.CreateExternalSignerRequest{
			CipherSuite: r.suite, Identity: []byte(fmt.Sprintf("ds%d", i))}))
		gce := r.proposal("AddExternalSigner")(c.AddExternalSigner(ctx, &pb.AddExternalSignerRequest{StateId: r.state["alice"], ExternalSender: signer[i].ExternalSender}))
		r.commit("alice", &pb.CommitRequest{ByReference: [][]byte{gce}}, []string{"bob", "charlie"}, nil)
	}
	r.agree("alice", "bob", "charlie")

	// ds0 (index 0, the runner passes no index) proposes adding dave; ds1
	// (index 1) proposes removing bob.
	gi = must[*pb.GroupInfoResponse](t, "GroupInfo")(c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: r.state["alice"], ExternalTree: true}))
	add := r.proposal("ExternalSignerProposal add")(c.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
		SignerId: signer[0].SignerId, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree,
		Description: &pb.ProposalDescription{ProposalType: []byte("add"), KeyPackage: r.keyPackage("dave")}}))
	rm := r.proposal("ExternalSignerProposal remove")(c.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
		SignerId: signer[1].SignerId, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree,
		Description: &pb.ProposalDescription{ProposalType: []byte("remove"), RemovedId: []byte("bob")}}))
	bob := r.state["bob"]
	delete(r.state, "bob")
	req := &pb.CommitRequest{ByReference: [][]byte{add, rm}}
	cr := r.commit("charlie", req, []string{"alice"}, []string{"dave"})
	must[*pb.HandleCommitResponse](t, "HandleCommit bob")(c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: bob, Proposal: req.ByReference, Commit: cr.Commit}))
	if _, err := c.Protect(ctx, &pb.ProtectRequest{StateId: bob, Plaintext: []byte("x")}); err == nil {
		t.Fatal("bob, removed by an external signer, can still send")
	}
	r.agree("alice", "charlie", "dave")
	r.message("dave", "alice", "charlie")

	// alice branches the group with charlie and dave.
	for _, tree := range []bool{false, true} {
		kps := [][]byte{r.keyPackage("charlie"), r.keyPackage("dave")}
		br := must[*pb.CreateSubgroupResponse](t, "CreateBranch")(c.CreateBranch(ctx, &pb.CreateBranchRequest{
			StateId: r.state["alice"], GroupId: []byte(fmt.Sprintf("branch-%v-%d-%v", tree, r.suite, r.encrypt)), KeyPackages: kps, ExternalTree: tree}))
		if tree != (len(br.RatchetTree) > 0) {
			t.Fatalf("external_tree=%v, tree of %d bytes", tree, len(br.RatchetTree))
		}
		b := newRunner(t, c, r.suite, r.encrypt)
		b.state["alice"] = br.StateId
		for _, m := range []string{"charlie", "dave"} {
			hb := must[*pb.HandleBranchResponse](t, "HandleBranch "+m)(c.HandleBranch(ctx, &pb.HandleBranchRequest{
				StateId: r.state[m], TransactionId: r.tx[m], Welcome: br.Welcome, RatchetTree: br.RatchetTree}))
			if !bytes.Equal(hb.EpochAuthenticator, br.EpochAuthenticator) {
				t.Fatalf("%s disagrees on the branch's epoch authenticator", m)
			}
			b.state[m] = hb.StateId
		}
		b.agree("alice", "charlie", "dave")
		b.message("charlie", "alice", "dave")
		// The parent group lives on.
		r.message("alice", "charlie", "dave")
	}
}

// TestReInit reinitialises a group into another suite and group id: alice
// proposes, bob commits, charlie creates the new group.
func TestReInit(t *testing.T) {
	c := startServer(t)
	for _, suite := range []uint32{1, 2, 3} {
		for _, encrypt := range []bool{false, true} {
			t.Run(fmt.Sprintf("suite=%d/encrypt=%v", suite, encrypt), func(t *testing.T) {
				reinitScenario(t, newRunner(t, c, suite, encrypt), suite%3+1)
			})
		}
	}
}

func reinitScenario(t *testing.T, r *runner, newSuite uint32) {
	c := r.c
	cg := must[*pb.CreateGroupResponse](t, "CreateGroup")(c.CreateGroup(ctx, &pb.CreateGroupRequest{
		GroupId: []byte(fmt.Sprintf("reinit-%d-%v", r.suite, r.encrypt)), CipherSuite: r.suite, EncryptHandshake: r.encrypt, Identity: []byte("alice")}))
	r.state["alice"] = cg.StateId
	r.commit("alice", &pb.CommitRequest{ByValue: []*pb.ProposalDescription{addDesc(r.keyPackage("bob")), addDesc(r.keyPackage("charlie"))}},
		nil, []string{"bob", "charlie"})

	newID := []byte(fmt.Sprintf("reinit-%d-%v++", r.suite, r.encrypt))
	prop := r.proposal("ReInitProposal")(c.ReInitProposal(ctx, &pb.ReInitProposalRequest{StateId: r.state["alice"], CipherSuite: newSuite, GroupId: newID}))
	cr := must[*pb.CommitResponse](t, "ReInitCommit")(c.ReInitCommit(ctx, &pb.CommitRequest{StateId: r.state["bob"], ByReference: [][]byte{prop}}))
	reinit := map[string]*pb.HandleReInitCommitResponse{}
	reinit["bob"] = must[*pb.HandleReInitCommitResponse](t, "HandlePendingReInitCommit")(c.HandlePendingReInitCommit(ctx, &pb.HandlePendingCommitRequest{StateId: r.state["bob"]}))
	for _, m := range []string{"alice", "charlie"} {
		reinit[m] = must[*pb.HandleReInitCommitResponse](t, "HandleReInitCommit "+m)(c.HandleReInitCommit(ctx, &pb.HandleCommitRequest{
			StateId: r.state[m], Proposal: [][]byte{prop}, Commit: cr.Commit}))
		if !bytes.Equal(reinit[m].EpochAuthenticator, reinit["bob"].EpochAuthenticator) {
			t.Fatalf("%s disagrees on the last epoch of the old group", m)
		}
	}
	if _, err := c.Protect(ctx, &pb.ProtectRequest{StateId: r.state["alice"], Plaintext: []byte("x")}); err == nil {
		t.Fatal("the reinitialised group still sends")
	}

	w := must[*pb.CreateSubgroupResponse](t, "ReInitWelcome")(c.ReInitWelcome(ctx, &pb.ReInitWelcomeRequest{
		ReinitId: reinit["charlie"].ReinitId, KeyPackage: [][]byte{reinit["alice"].KeyPackage, reinit["bob"].KeyPackage}, ExternalTree: true}))
	if len(w.RatchetTree) == 0 {
		t.Fatal("external_tree set but no tree returned")
	}
	n := newRunner(t, c, newSuite, r.encrypt)
	n.state["charlie"] = w.StateId
	for _, m := range []string{"alice", "bob"} {
		j := must[*pb.JoinGroupResponse](t, "HandleReInitWelcome "+m)(c.HandleReInitWelcome(ctx, &pb.HandleReInitWelcomeRequest{
			ReinitId: reinit[m].ReinitId, Welcome: w.Welcome, RatchetTree: w.RatchetTree}))
		if !bytes.Equal(j.EpochAuthenticator, w.EpochAuthenticator) {
			t.Fatalf("%s disagrees on the new group's epoch authenticator", m)
		}
		n.state[m] = j.StateId
	}
	n.agree("alice", "bob", "charlie")
	n.message("alice", "bob", "charlie")
	n.message("charlie", "alice", "bob")
	n.commit("bob", &pb.CommitRequest{ForcePath: true}, []string{"alice", "charlie"}, nil)
	n.agree("alice", "bob", "charlie")
}
