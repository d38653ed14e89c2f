package crossimpl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/interop/server"
)

var ctx = context.Background()

// peer is a running ts-mls member (peer.mjs).
type peer struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
}

func startPeer(t *testing.T) *peer {
	cmd := exec.Command("node", "peer.mjs")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("peer.mjs: %v\n%s", err, stderr.String())
		}
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 16<<20)
	return &peer{t: t, in: in, out: sc}
}

// call sends one request and decodes the reply; hex fields are returned
// decoded.
func (p *peer) call(req map[string]any) map[string][]byte {
	p.t.Helper()
	line, err := json.Marshal(req)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.in.Write(append(line, '\n')); err != nil {
		p.t.Fatal(err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("peer.mjs closed its output: %v", p.out.Err())
	}
	var reply map[string]string
	if err := json.Unmarshal(p.out.Bytes(), &reply); err != nil {
		p.t.Fatalf("peer.mjs reply %q: %v", p.out.Bytes(), err)
	}
	if e, ok := reply["error"]; ok {
		p.t.Fatalf("ts-mls %s: %s", req["op"], e)
	}
	out := map[string][]byte{}
	for k, v := range reply {
		if k == "kind" {
			out[k] = []byte(v)
			continue
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			p.t.Fatalf("reply field %s: %v", k, err)
		}
		out[k] = b
	}
	return out
}

func startServer(t *testing.T) pb.MLSClientClient {
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

// TestTSMLS has ts-mls create a group and add a member served by Parley's
// interop server from a KeyPackage Parley made; both sides exchange
// application messages and commits (public and private) and must agree on
// the epoch authenticator and exported secrets.
func TestTSMLS(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed")
	}
	if out, err := exec.Command("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund").CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	c := startServer(t)
	for _, suite := range []uint32{1, 2, 3} {
		for _, encrypt := range []bool{false, true} {
			t.Run(fmt.Sprintf("ts-creates/suite=%d/encrypt=%v", suite, encrypt), func(t *testing.T) {
				crossScenario(t, c, startPeer(t), suite, encrypt)
			})
			if suite != 2 {
				t.Run(fmt.Sprintf("parley-creates/suite=%d/encrypt=%v", suite, encrypt), func(t *testing.T) {
					parleyCreates(t, c, startPeer(t), suite, encrypt)
				})
			}
		}
	}
}

func crossScenario(t *testing.T, c pb.MLSClientClient, ts *peer, suite uint32, encrypt bool) {
	kp, err := c.CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: suite, Identity: []byte("parley")})
	if err != nil {
		t.Fatal(err)
	}
	created := ts.call(map[string]any{"op": "create", "suite": suite, "groupId": hex.EncodeToString([]byte(fmt.Sprintf("ts-%d-%v", suite, encrypt))),
		"keyPackage": hex.EncodeToString(kp.KeyPackage)})
	joined, err := c.JoinGroup(ctx, &pb.JoinGroupRequest{TransactionId: kp.TransactionId, Welcome: created["welcome"], EncryptHandshake: encrypt, Identity: []byte("parley")})
	if suite == 2 {
		// ts-mls 1.6.4 encodes P-256 signature public keys compressed (33
		// bytes); RFC 9420, Section 5.1.1 requires the uncompressed point,
		// so Parley must refuse its leaf.
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "P-256 public key") {
			t.Fatalf("joining a group whose creator has a compressed P-256 key: %v, want a refusal of the key", err)
		}
		t.Log("ts-mls uses compressed P-256 signature keys (not RFC 9420); Parley refuses them as it must")
		return
	}
	if err != nil {
		t.Fatalf("Parley joins ts-mls's group: %v", err)
	}
	if !bytes.Equal(joined.EpochAuthenticator, created["epochAuthenticator"]) {
		t.Fatal("epoch authenticators differ after the Welcome")
	}
	id := joined.StateId
	agree := func(when string) {
		t.Helper()
		ours, err := c.Export(ctx, &pb.ExportRequest{StateId: id, Label: "cross", Context: []byte{9, 9}, KeyLength: 32})
		if err != nil {
			t.Fatal(err)
		}
		theirs := ts.call(map[string]any{"op": "export", "label": "cross", "context": "0909", "length": 32})
		if !bytes.Equal(ours.ExportedSecret, theirs["secret"]) {
			t.Fatalf("%s: exported secrets differ", when)
		}
	}
	agree("after join")

	messages := func(round int) {
		t.Helper()
		pt, aad := fmt.Sprintf("from ts-mls %d", round), fmt.Sprintf("ts aad %d", round)
		m := ts.call(map[string]any{"op": "protect", "plaintext": hex.EncodeToString([]byte(pt)), "aad": hex.EncodeToString([]byte(aad))})
		got, err := c.Unprotect(ctx, &pb.UnprotectRequest{StateId: id, Ciphertext: m["message"]})
		if err != nil {
			t.Fatalf("Parley reads ts-mls's message: %v", err)
		}
		if string(got.Plaintext) != pt || string(got.AuthenticatedData) != aad {
			t.Fatalf("Parley read %q/%q", got.Plaintext, got.AuthenticatedData)
		}
		mine := fmt.Sprintf("from Parley %d", round)
		ct, err := c.Protect(ctx, &pb.ProtectRequest{StateId: id, Plaintext: []byte(mine), AuthenticatedData: []byte("parley aad")})
		if err != nil {
			t.Fatal(err)
		}
		r := ts.call(map[string]any{"op": "process", "message": hex.EncodeToString(ct.Ciphertext)})
		if string(r["kind"]) != "applicationMessage" || string(r["plaintext"]) != mine {
			t.Fatalf("ts-mls read %s %q", r["kind"], r["plaintext"])
		}
	}
	messages(0)

	// ts-mls commits (public, then private); Parley follows.
	for i, public := range []bool{true, false} {
		r := ts.call(map[string]any{"op": "commit", "public": public})
		hc, err := c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: id, Commit: r["commit"]})
		if err != nil {
			t.Fatalf("Parley processes ts-mls's commit (public=%v): %v", public, err)
		}
		if !bytes.Equal(hc.EpochAuthenticator, r["epochAuthenticator"]) {
			t.Fatalf("epoch authenticators differ after ts-mls's commit (public=%v)", public)
		}
		agree("after ts-mls's commit")
		messages(1 + i)
	}

	// Parley commits with a path; ts-mls follows.
	cr, err := c.Commit(ctx, &pb.CommitRequest{StateId: id, ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	hp, err := c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: id})
	if err != nil {
		t.Fatal(err)
	}
	r := ts.call(map[string]any{"op": "process", "message": hex.EncodeToString(cr.Commit)})
	if string(r["kind"]) != "newState" || !bytes.Equal(r["epochAuthenticator"], hp.EpochAuthenticator) {
		t.Fatalf("ts-mls after Parley's commit: kind %s, authenticators equal %v", r["kind"], bytes.Equal(r["epochAuthenticator"], hp.EpochAuthenticator))
	}
	agree("after Parley's commit")
	messages(3)
}

// parleyCreates has Parley create a group and add ts-mls from a KeyPackage
// ts-mls made; ts-mls joins from Parley's Welcome (tree inline), then both
// exchange messages and a commit each.
func parleyCreates(t *testing.T, c pb.MLSClientClient, ts *peer, suite uint32, encrypt bool) {
	cg, err := c.CreateGroup(ctx, &pb.CreateGroupRequest{GroupId: []byte(fmt.Sprintf("parley-%d-%v", suite, encrypt)), CipherSuite: suite,
		EncryptHandshake: encrypt, Identity: []byte("parley")})
	if err != nil {
		t.Fatal(err)
	}
	id := cg.StateId
	kp := ts.call(map[string]any{"op": "keyPackage", "suite": suite})
	cr, err := c.Commit(ctx, &pb.CommitRequest{StateId: id, ByValue: []*pb.ProposalDescription{{ProposalType: []byte("add"), KeyPackage: kp["keyPackage"]}}})
	if err != nil {
		t.Fatalf("Parley adds ts-mls: %v", err)
	}
	hp, err := c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: id})
	if err != nil {
		t.Fatal(err)
	}
	j := ts.call(map[string]any{"op": "join", "welcome": hex.EncodeToString(cr.Welcome)})
	if !bytes.Equal(j["epochAuthenticator"], hp.EpochAuthenticator) {
		t.Fatal("ts-mls and Parley disagree after ts-mls joined from Parley's Welcome")
	}
	for round := range 2 {
		ct, err := c.Protect(ctx, &pb.ProtectRequest{StateId: id, Plaintext: []byte("hi ts"), AuthenticatedData: []byte("a")})
		if err != nil {
			t.Fatal(err)
		}
		if r := ts.call(map[string]any{"op": "process", "message": hex.EncodeToString(ct.Ciphertext)}); string(r["plaintext"]) != "hi ts" {
			t.Fatalf("ts-mls read %q", r["plaintext"])
		}
		m := ts.call(map[string]any{"op": "protect", "plaintext": hex.EncodeToString([]byte("hi parley")), "aad": ""})
		got, err := c.Unprotect(ctx, &pb.UnprotectRequest{StateId: id, Ciphertext: m["message"]})
		if err != nil || string(got.Plaintext) != "hi parley" {
			t.Fatalf("Parley read %v, %v", got, err)
		}
		if round == 0 {
			r := ts.call(map[string]any{"op": "commit", "public": !encrypt})
			hc, err := c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: id, Commit: r["commit"]})
			if err != nil || !bytes.Equal(hc.EpochAuthenticator, r["epochAuthenticator"]) {
				t.Fatalf("Parley after ts-mls's commit: %v", err)
			}
		}
	}
}
