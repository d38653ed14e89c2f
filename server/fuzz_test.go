package server_test

import (
	"context"
	"testing"
	"time"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/wire"
)

// FuzzConnection writes arbitrary WebSocket messages on an authenticated
// connection of a real server: whatever the bytes, the server must neither
// panic nor drop the connection, and must keep answering.
func FuzzConnection(f *testing.F) {
	srv := ts.Start(f)
	alice := srv.NewAccount(f)
	c := srv.Connect(f, alice.Devices[0])
	id := ts.MessageID()
	reqs := []*wire.Request{
		{Kind: &wire.Request_Ping{Ping: &wire.Ping{}}},
		{Kind: &wire.Request_Hello{Hello: &wire.Hello{Versions: []uint32{1}}}},
		{Kind: &wire.Request_Lookup{Lookup: &wire.Lookup{By: &wire.Lookup_Username{Username: "alice"}}}},
		{Kind: &wire.Request_CreateGroup{CreateGroup: &wire.CreateGroup{GroupId: []byte("g")}}},
		{Kind: &wire.Request_Send{Send: &wire.Send{GroupId: []byte("g"), MessageId: id[:], Data: []byte("x")}}},
		{Kind: &wire.Request_Commit{Commit: &wire.Commit{GroupId: []byte("g"), MessageId: id[:], Commit: []byte("c"),
			Added: []*wire.DeviceRef{{AccountId: string(alice.ID), DeviceId: id[:]}}}}},
		{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{To: alice.Devices[0].WireRef(), MessageId: id[:], Data: []byte("m")}}}}},
		{Kind: &wire.Request_Fetch{Fetch: &wire.Fetch{Limit: 5}}},
		{Kind: &wire.Request_UploadKeyPackages{UploadKeyPackages: &wire.UploadKeyPackages{KeyPackages: [][]byte{[]byte("kp")}}}},
		{Kind: &wire.Request_ClaimKeyPackages{ClaimKeyPackages: &wire.ClaimKeyPackages{AccountId: string(alice.ID)}}},
		{Kind: &wire.Request_RevokeDevice{RevokeDevice: &wire.RevokeDevice{DeviceId: id[:]}}},
		{Kind: &wire.Request_ClaimUsername{ClaimUsername: &wire.ClaimUsername{Claim: []byte{1, 2, 3}}}},
		{Kind: &wire.Request_AddDevice{AddDevice: &wire.AddDevice{DeviceCertificate: alice.Devices[0].Cert.Marshal()}}},
	}
	for i, r := range reqs {
		msg, err := wire.EncodeMessage(&wire.Frame{Id: uint64(1000 + i), Body: &wire.Frame_Request{Request: r}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	ack, _ := wire.EncodeMessage(&wire.Frame{Id: 2000, Body: &wire.Frame_Ack{Ack: &wire.Ack{Refs: []*wire.AckRef{{GroupId: []byte("g"), Seq: 1}, {MailboxSeq: 1}}}}})
	f.Add(ack)
	f.Add([]byte{0x03, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) == 0 || len(msg) > wire.MaxMessageSize {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.WriteMessage(ctx, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		// A protocol error here may answer a frame of the input that used
		// the ping's id; only a dead connection is a failure.
		if _, err := c.Ping(ctx); err != nil && ts.Code(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED {
			t.Fatalf("connection no longer served after %x: %v", msg, err)
		}
	})
}
