// Command interop serves the MLS working group's interop service
// (mls_client.proto) backed by Parley's mls package, for the working
// group's test runner (github.com/mlswg/mls-implementations, interop/).
//
// Usage:
//
//	interop -port 50051
//
// It listens on 127.0.0.1 only and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"google.golang.org/grpc"

	"github.com/parley-im/parley/interop/mlsclientpb"
	"github.com/parley-im/parley/interop/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("interop", flag.ContinueOnError)
	port := fs.Int("port", 50051, "TCP port to listen on (127.0.0.1 only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("port %d out of range", *port)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	mlsclientpb.RegisterMLSClientServer(srv, server.New())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	slog.Info("serving the MLS interop service", "addr", lis.Addr().String())
	if err := srv.Serve(lis); err != nil {
		return fmt.Errorf("failed to serve: %w", err)
	}
	return nil
}
