package message

import (
	"bytes"
	"testing"
)

func BenchmarkDecodeMLSMessage(b *testing.B) {
	s := newSamples(b)
	big := *s.private
	big.Ciphertext = bytes.Repeat([]byte{1}, 1024+64)
	for _, bc := range []struct {
		name string
		msg  *MLSMessage
	}{
		{"PrivateMessage1KiB", NewPrivateMessage(&big)},
		{"PublicCommit", NewPublicMessage(s.public[1])},
		{"KeyPackage", NewKeyPackage(s.keyPackage)},
		{"Welcome", NewWelcome(s.welcome)},
	} {
		data, err := bc.msg.Bytes()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeMLSMessage(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/Encode", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.msg.Bytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeRatchetTree(b *testing.B) {
	s := newSamples(b)
	// 1,000 leaves with all parents set: 1,999 nodes.
	leaf := s.tree[0]
	parent := &Node{Parent: &ParentNode{EncryptionKey: bytes.Repeat([]byte{9}, 32), ParentHash: bytes.Repeat([]byte{1}, 32)}}
	tree := make(RatchetTree, 1999)
	for i := range tree {
		if i%2 == 0 {
			tree[i] = leaf
		} else {
			tree[i] = parent
		}
	}
	data, err := tree.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRatchetTree(data); err != nil {
			b.Fatal(err)
		}
	}
}
