// Package wire is the Parley client/server protocol: the protobuf messages
// generated from parley.proto, the size limits of every field, and the
// codec that packs frames into WebSocket messages.
//
// A WebSocket message carries one or more [Frame]s, each prefixed by its
// length as an unsigned varint. Use [AppendFrame] to add a frame to an
// outgoing message and [DecodeMessage] to read the frames of an incoming
// one; DecodeMessage enforces [MaxFrameSize] and every field limit
// ([Validate]) before a frame reaches the caller.
//
// The generated code is committed. To regenerate it after editing
// parley.proto, install protoc and protoc-gen-go (the version in go.mod)
// and run `go generate ./wire`.
package wire

//go:generate protoc --go_out=. --go_opt=paths=source_relative parley.proto

// Version is the protocol version this package speaks.
const Version = 1
