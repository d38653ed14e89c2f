package filetest

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-im/parley/internal/binharness"
	"github.com/parley-im/parley/server/blob"
)

// TestServerKilledMidUpload SIGKILLs `parley serve` while a `parley file
// send` streams a file in one request, restarts it on the same data and
// address, and checks that the upload offset the server reports survived
// (a checkpoint, not zero) and that running `file send` again completes the
// file from there: the recipient gets one message and the same bytes.
func TestServerKilledMidUpload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	flags := []string{"--log-level", "debug", "--listen", addr, "--max-file-size", "1GiB"}
	srv := startServer(t, flags...)
	alice := newProfile(t, srv, "alice")
	bob := newProfile(t, srv, "bob")
	const size = 192 << 20
	path := filepath.Join(t.TempDir(), "big.bin")
	writeRandom(t, path, size)

	send := alice.start("file", "send", "bob@127.0.0.1", path, "--json")
	sent := make(chan struct{})
	go func() { _ = send.Wait(); close(sent) }()
	parts := filepath.Join(srv.Data, "blobs", "data", "*", "*.part")
	var part string
	for deadline := time.Now().Add(2 * time.Minute); part == ""; {
		if time.Now().After(deadline) {
			t.Fatal("the upload never passed 96 MiB")
		}
		select {
		case <-sent:
			t.Fatal("file send finished before the server could be killed")
		default:
		}
		ms, _ := filepath.Glob(parts)
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.Size() >= 96<<20 {
				part = m
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := syscall.Kill(srv.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t) // reaps it
	<-sent
	if send.ProcessState.Success() {
		t.Fatal("file send succeeded although its server was killed")
	}

	// Same data folder, same address: the profiles' server URL still works.
	srv2 := binharness.StartServer(t, binary, nil, append(flags, "--data", srv.Data)...)
	id := strings.TrimSuffix(filepath.Base(part), ".part")
	if _, err := blob.ParseID(id); err != nil {
		t.Fatalf("blob file %s: %v", part, err)
	}
	resp, err := http.Head(srv2.URL + "/v1/blobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	offset, err := strconv.ParseInt(resp.Header.Get(blob.HeaderOffset), 10, 64)
	if err != nil || offset < blob.CheckpointSize || offset%blob.CheckpointSize != 0 {
		t.Fatalf("after the crash the server reports offset %q (%v), want a multiple of %d MiB", resp.Header.Get(blob.HeaderOffset), err, blob.CheckpointSize>>20)
	}
	t.Logf("killed with %s on disk; the server kept offset %d MiB", part, offset>>20)

	again := one[sentJSON](t, alice.cmd("file", "send", "bob@127.0.0.1", path, "--json"))
	m := bob.recvFile()
	if m.ID != again.ID {
		t.Fatalf("bob got file message %s, alice sent %s", m.ID, again.ID)
	}
	out := filepath.Join(t.TempDir(), "got.bin")
	one[gotJSON](t, bob.cmd("file", "get", m.ID, "--out", out, "--json"))
	if fileHash(t, out) != fileHash(t, path) {
		t.Fatal("the file fetched after the crash differs from the one sent")
	}
	if blobs, _ := filepath.Glob(filepath.Join(srv.Data, "blobs", "data", "*", "*")); len(blobs) != 1 {
		t.Fatalf("the server holds %v, want the one blob resumed", blobs)
	}
}
