// Package mlsclientpb holds the Go code generated from mls_client.proto, the
// MLS working group's interop service definition (copied unchanged from
// github.com/mlswg/mls-implementations, interop/proto/mls_client.proto, via
// the project's spec folder ../shared/spec/mls_client.proto).
//
// Regenerate with `go generate` after installing protoc, protoc-gen-go and
// protoc-gen-go-grpc.
package mlsclientpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative "--go_opt=Mmls_client.proto=github.com/parley-im/parley/interop/mlsclientpb;mlsclientpb" --go-grpc_out=. --go-grpc_opt=paths=source_relative "--go-grpc_opt=Mmls_client.proto=github.com/parley-im/parley/interop/mlsclientpb;mlsclientpb" mls_client.proto
