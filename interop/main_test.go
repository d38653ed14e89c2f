package main

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/parley-im/parley/interop/mlsclientpb"
)

// TestBinary builds the program, starts it with -port and calls it over
// gRPC on 127.0.0.1.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "interop")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()

	cmd := exec.Command(bin, "-port", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	conn, err := grpc.NewClient(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// WaitForReady lets the call wait while the program starts listening.
	resp, err := pb.NewMLSClientClient(conn).SupportedCiphersuites(ctx, &pb.SupportedCiphersuitesRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Ciphersuites) != 3 {
		t.Fatalf("suites %v", resp.Ciphersuites)
	}
}

func TestRunRejectsBadPort(t *testing.T) {
	if err := run([]string{"-port", "70000"}); err == nil {
		t.Fatal("port 70000 accepted")
	}
}
