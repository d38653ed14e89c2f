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
		// The second branch also sets its own extensions and forces a path.
		var exts []*pb.Extension
		if tree {
			exts = []*pb.Extension{{ExtensionType: 3, ExtensionData: []byte{0, 0, 0}}, {ExtensionType: 5, ExtensionData: []byte{0}}}
		}
		br := must[*pb.CreateSubgroupResponse](t, "CreateBranch")(c.CreateBranch(ctx, &pb.CreateBranchRequest{
			StateId: r.state["alice"], GroupId: []byte(fmt.Sprintf("branch-%v-%d-%v", tree, r.suite, r.encrypt)), KeyPackages: kps,
			ExternalTree: tree, ForcePath: tree, Extensions: exts}))
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
	externalKinds(t, r, signer, []string{"alice", "charlie", "dave"})
}

// varint encodes n as an RFC 9420 variable-length integer (n < 2^14).
func varint(n int) []byte {
	if n < 64 {
		return []byte{byte(n)}
	}
	return []byte{0x40 | byte(n>>8), byte(n)}
}

// externalKinds has external signers propose an external PSK, a
// resumption PSK, new group context extensions and finally a
// reinitialisation, which the members commit and follow.
func externalKinds(t *testing.T, r *runner, signers [2]*pb.CreateExternalSignerResponse, members []string) {
	c := r.c
	committer, others := members[0], members[1:]
	pskID, secret := []byte("ext-psk"), []byte("external pre-shared key secret..")
	for _, m := range members {
		must[*pb.StorePSKResponse](t, "StorePSK")(c.StorePSK(ctx, &pb.StorePSKRequest{StateOrTransactionId: r.state[m], PskId: pskID, PskSecret: secret}))
	}
	groupInfo := func() *pb.GroupInfoResponse {
		return must[*pb.GroupInfoResponse](t, "GroupInfo")(c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: r.state[committer], ExternalTree: true}))
	}
	propose := func(signer int, gi *pb.GroupInfoResponse, d *pb.ProposalDescription) []byte {
		return r.proposal("ExternalSignerProposal " + string(d.ProposalType))(c.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
			SignerId: signers[signer].SignerId, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, Description: d}))
	}
	gi := groupInfo()
	epoch := r.epoch(committer)
	// The new extensions keep both signers (so the ReInit below can still
	// come from one) and add an empty required_capabilities.
	senders := append(append([]byte{}, signers[0].ExternalSender...), signers[1].ExternalSender...)
	props := [][]byte{
		propose(0, gi, &pb.ProposalDescription{ProposalType: []byte("externalPSK"), PskId: pskID}),
		propose(1, gi, &pb.ProposalDescription{ProposalType: []byte("resumptionPSK"), EpochId: epoch}),
		propose(0, gi, &pb.ProposalDescription{ProposalType: []byte("groupContextExtensions"), Extensions: []*pb.Extension{
			{ExtensionType: 5, ExtensionData: append(varint(len(senders)), senders...)}, {ExtensionType: 3, ExtensionData: []byte{0, 0, 0}}}}),
	}
	r.commit(committer, &pb.CommitRequest{ByReference: props}, others, nil)
	r.agree(members...)

	newSuite := r.suite%3 + 1
	ri := propose(1, groupInfo(), &pb.ProposalDescription{ProposalType: []byte("reinit"), CipherSuite: newSuite,
		GroupId: []byte(fmt.Sprintf("ext-reinit-%d-%v", r.suite, r.encrypt)), Extensions: []*pb.Extension{{ExtensionType: 3, ExtensionData: []byte{0, 0, 0}}}})
	reinitFollow(t, r, ri, nil, committer, others[0], members, newSuite)
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
	members := []string{"alice", "bob", "charlie"}
	for _, byValue := range []bool{false, true} {
		id := fmt.Sprintf("reinit-%d-%v-%v", r.suite, r.encrypt, byValue)
		cg := must[*pb.CreateGroupResponse](t, "CreateGroup")(c.CreateGroup(ctx, &pb.CreateGroupRequest{
			GroupId: []byte(id), CipherSuite: r.suite, EncryptHandshake: r.encrypt, Identity: []byte("alice")}))
		r.state["alice"] = cg.StateId
		r.commit("alice", &pb.CommitRequest{ByValue: []*pb.ProposalDescription{addDesc(r.keyPackage("bob")), addDesc(r.keyPackage("charlie"))}},
			nil, []string{"bob", "charlie"})
		if byValue {
			// bob commits a ReInit by value with new extensions; alice
			// creates the new group.
			reinitFollow(t, r, nil, &pb.ProposalDescription{ProposalType: []byte("reinit"), CipherSuite: newSuite, GroupId: []byte(id + "++"),
				Extensions: []*pb.Extension{{ExtensionType: 3, ExtensionData: []byte{0, 0, 0}}}}, "bob", "alice", members, newSuite)
			continue
		}
		// alice proposes, bob commits by reference, charlie creates the
		// new group.
		prop := r.proposal("ReInitProposal")(c.ReInitProposal(ctx, &pb.ReInitProposalRequest{StateId: r.state["alice"], CipherSuite: newSuite, GroupId: []byte(id + "++")}))
		reinitFollow(t, r, prop, nil, "bob", "charlie", members, newSuite)
	}
}

// reinitFollow has committer commit a ReInit (the proposal prop by
// reference, or desc by value), every member follow, welcomer create the
// new group in newSuite and the others join it.
func reinitFollow(t *testing.T, r *runner, prop []byte, desc *pb.ProposalDescription, committer, welcomer string, members []string, newSuite uint32) {
	c := r.c
	req := &pb.CommitRequest{StateId: r.state[committer]}
	if prop != nil {
		req.ByReference = [][]byte{prop}
	} else {
		req.ByValue = []*pb.ProposalDescription{desc}
	}
	cr := must[*pb.CommitResponse](t, "ReInitCommit")(c.ReInitCommit(ctx, req))
	reinit := map[string]*pb.HandleReInitCommitResponse{}
	reinit[committer] = must[*pb.HandleReInitCommitResponse](t, "HandlePendingReInitCommit")(c.HandlePendingReInitCommit(ctx, &pb.HandlePendingCommitRequest{StateId: r.state[committer]}))
	for _, m := range members {
		if m == committer {
			continue
		}
		reinit[m] = must[*pb.HandleReInitCommitResponse](t, "HandleReInitCommit "+m)(c.HandleReInitCommit(ctx, &pb.HandleCommitRequest{
			StateId: r.state[m], Proposal: req.ByReference, Commit: cr.Commit}))
		if !bytes.Equal(reinit[m].EpochAuthenticator, reinit[committer].EpochAuthenticator) {
			t.Fatalf("%s disagrees on the last epoch of the old group", m)
		}
	}
	if _, err := c.Protect(ctx, &pb.ProtectRequest{StateId: r.state[members[0]], Plaintext: []byte("x")}); err == nil {
		t.Fatal("the reinitialised group still sends")
	}

	var kps [][]byte
	for _, m := range members {
		if m != welcomer {
			kps = append(kps, reinit[m].KeyPackage)
		}
	}
	w := must[*pb.CreateSubgroupResponse](t, "ReInitWelcome")(c.ReInitWelcome(ctx, &pb.ReInitWelcomeRequest{
		ReinitId: reinit[welcomer].ReinitId, KeyPackage: kps, ExternalTree: true, ForcePath: true}))
	if len(w.RatchetTree) == 0 {
		t.Fatal("external_tree set but no tree returned")
	}
	n := newRunner(t, c, newSuite, r.encrypt)
	n.state[welcomer] = w.StateId
	var others []string
	for _, m := range members {
		if m == welcomer {
			continue
		}
		others = append(others, m)
		j := must[*pb.JoinGroupResponse](t, "HandleReInitWelcome "+m)(c.HandleReInitWelcome(ctx, &pb.HandleReInitWelcomeRequest{
			ReinitId: reinit[m].ReinitId, Welcome: w.Welcome, RatchetTree: w.RatchetTree}))
		if !bytes.Equal(j.EpochAuthenticator, w.EpochAuthenticator) {
			t.Fatalf("%s disagrees on the new group's epoch authenticator", m)
		}
		n.state[m] = j.StateId
	}
	n.agree(members...)
	n.message(welcomer, others...)
	n.message(others[0], append(others[1:], welcomer)...)
	n.commit(others[0], &pb.CommitRequest{ForcePath: true}, append(others[1:], welcomer), nil)
	n.agree(members...)
}
