package wire

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func TestEveryFieldHasLimit(t *testing.T) {
	msgs := File_parley_proto.Messages()
	for i := 0; i < msgs.Len(); i++ {
		fields := msgs.Get(i).Fields()
		for j := 0; j < fields.Len(); j++ {
			fd := fields.Get(j)
			needs := fd.IsList() || fd.Kind() == protoreflect.BytesKind || fd.Kind() == protoreflect.StringKind
			if needs {
				if _, ok := fieldLimits[fd.FullName()]; !ok {
					t.Errorf("field %s has no limit in fieldLimits", fd.FullName())
				}
			}
			if fd.IsList() && fd.Kind() == protoreflect.BytesKind {
				if _, ok := elementLimits[fd.FullName()]; !ok {
					t.Errorf("repeated bytes field %s has no element limit", fd.FullName())
				}
			}
		}
	}
	for name := range fieldLimits {
		md := File_parley_proto.Messages().ByName(name.Parent().Name())
		if md == nil || md.Fields().ByName(name.Name()) == nil {
			t.Errorf("fieldLimits names unknown field %s", name)
		}
	}
}

func sendFrame(id uint64, data []byte) *Frame {
	return &Frame{Id: id, Body: &Frame_Request{Request: &Request{Kind: &Request_Send{Send: &Send{
		GroupId: []byte("g"), Epoch: 3, MessageId: bytes.Repeat([]byte{1}, 16), Data: data,
	}}}}}
}

func TestRoundTripBatch(t *testing.T) {
	msg, err := EncodeMessage(sendFrame(1, []byte("a")), sendFrame(2, []byte("bb")))
	if err != nil {
		t.Fatal(err)
	}
	var got []*Frame
	err = DecodeMessage(msg, func(f *Frame, err error) error {
		if err != nil {
			return err
		}
		got = append(got, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !proto.Equal(got[1], sendFrame(2, []byte("bb"))) {
		t.Fatalf("got %v", got)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := EncodeMessage(sendFrame(1, []byte("hello")))
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", good[:len(good)-2], ErrMalformed},
		{"bad varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrMalformed},
		{"huge length", []byte{0x80, 0x80, 0x80, 0x10, 1}, ErrTooLarge},
		{"garbage", []byte{3, 0xff, 0xff, 0xff}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := DecodeMessage(tc.msg, func(f *Frame, err error) error { return err })
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFieldLimitKeepsID(t *testing.T) {
	f := sendFrame(42, nil)
	f.GetRequest().GetSend().GroupId = make([]byte, MaxGroupIDSize+1)
	b, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeFrame(b)
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want LimitError", err)
	}
	if le.Field != "parley.wire.v1.Send.group_id" || got.GetId() != 42 {
		t.Fatalf("field %s id %d", le.Field, got.GetId())
	}
}

func TestRepeatedElementLimit(t *testing.T) {
	f := &Frame{Id: 1, Body: &Frame_Request{Request: &Request{Kind: &Request_UploadKeyPackages{
		UploadKeyPackages: &UploadKeyPackages{KeyPackages: [][]byte{make([]byte, MaxKeyPackageSize+1)}},
	}}}}
	if err := Validate(f); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	f.GetRequest().GetUploadKeyPackages().KeyPackages = make([][]byte, MaxKeyPackagesPerUpload+1)
	if err := Validate(f); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestAppendFrameRefusesOversized(t *testing.T) {
	f := sendFrame(1, make([]byte, MaxFrameSize))
	if _, err := AppendFrame(nil, f); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownRequestKindDecodes(t *testing.T) {
	// A Request with field number 999 (a kind this version does not know).
	req := []byte{0xba, 0x3e, 0x00} // field 999, wire type 2, length 0
	frame := append([]byte{0x08, 0x07, 0x12, byte(len(req))}, req...)
	f, err := DecodeFrame(frame)
	if err != nil {
		t.Fatal(err)
	}
	if f.GetId() != 7 || f.GetRequest() == nil || f.GetRequest().GetKind() != nil {
		t.Fatalf("got %v", f)
	}
}

func TestErrorTruncatesToValidUTF8(t *testing.T) {
	e := NewError(ErrorCode_INTERNAL, "%s", bytes.Repeat([]byte("é"), MaxErrorMessage))
	if _, err := AppendFrame(nil, &Frame{Body: &Frame_Error{Error: e}}); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	good, _ := EncodeMessage(sendFrame(1, []byte("hello")), &Frame{Id: 2, Body: &Frame_Ack{Ack: &Ack{Refs: []*AckRef{{MailboxSeq: 3}}}}})
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x05, 0x08, 0x01})
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, msg []byte) {
		_ = DecodeMessage(msg, func(fr *Frame, err error) error {
			if err == nil {
				if verr := Validate(fr); verr != nil {
					t.Fatalf("decoded frame fails validation: %v", verr)
				}
				if _, aerr := AppendFrame(nil, fr); aerr != nil {
					t.Fatalf("decoded frame does not re-encode: %v", aerr)
				}
			}
			return nil
		})
	})
}

func BenchmarkDecodeMessage(b *testing.B) {
	msg, _ := EncodeMessage(sendFrame(1, make([]byte, 256)))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeMessage(msg, func(f *Frame, err error) error { return err }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	f := sendFrame(1, make([]byte, 256))
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(f); err != nil {
			b.Fatal(err)
		}
	}
}
