package wire

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestFastValidateCoversFields: every limited field of the message types
// the fast path reads is either checked by it with the limit fieldLimits
// gives, or a oneof member it does not accept (those frames take the
// reflective path), or a message field it descends into.
func TestFastValidateCoversFields(t *testing.T) {
	for name, limit := range fastChecked {
		if got, ok := fieldLimits[protoreflect.FullName(name)]; !ok || got != limit {
			t.Errorf("fast path checks %s against %d, fieldLimits says %d (present %v)", name, limit, got, ok)
		}
	}
	for _, shape := range fastShapes {
		md := File_parley_proto.Messages().ByName(protoreflect.Name(shape))
		if md == nil {
			t.Fatalf("no message %s", shape)
		}
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			name := string(fd.FullName())
			limited := fd.IsList() || fd.IsMap() || fd.Kind() == protoreflect.BytesKind ||
				fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.MessageKind
			switch {
			case !limited, fastEntered[name]:
			case fd.ContainingOneof() != nil && fd.Kind() == protoreflect.MessageKind && !fd.IsList():
				// a body the fast path does not accept
			default:
				if _, ok := fastChecked[name]; !ok || fd.IsList() || fd.IsMap() {
					t.Errorf("%s is limited, but the fast path does not check it", name)
				}
			}
		}
	}
}

// TestFastValidateAgrees: on hot-path frames with fields just under, at and
// over their limits, Validate (with the fast path) and the reflective
// check agree, and the fast path accepts what is within limits.
func TestFastValidateAgrees(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	size := func(limit int) int {
		switch rnd.IntN(4) {
		case 0:
			return 0
		case 1:
			return limit
		case 2:
			return limit + 1
		}
		return rnd.IntN(limit + 1)
	}
	b := func(limit int) []byte { return bytes.Repeat([]byte{'x'}, size(limit)) }
	s := func(limit int) string { return strings.Repeat("a", size(limit)) }
	accepted, refused := 0, 0
	for i := 0; i < 3000; i++ {
		var f *Frame
		switch i % 4 {
		case 0:
			f = &Frame{Id: 1, Body: &Frame_Request{Request: &Request{Kind: &Request_Send{Send: &Send{
				GroupId: b(MaxGroupIDSize), MessageId: b(IDSize), Data: b(MaxDataSize), Epoch: 3}}}}}
		case 1:
			d := &Delivery{GroupId: b(MaxGroupIDSize), MessageId: b(IDSize), Data: b(MaxDataSize), Seq: 9}
			if rnd.IntN(2) == 0 {
				d.Sender = &DeviceRef{AccountId: s(AccountIDSize), DeviceId: b(IDSize)}
			}
			f = &Frame{Body: &Frame_Event{Event: &Event{Kind: &Event_Delivery{Delivery: d}}}}
		case 2:
			f = &Frame{Id: 2, Body: &Frame_Response{Response: &Response{Kind: &Response_Send{Send: &SendResponse{Seq: 5}}}}}
		case 3: // not a hot shape: always the reflective path
			f = &Frame{Id: 3, Body: &Frame_Request{Request: &Request{Kind: &Request_CreateGroup{CreateGroup: &CreateGroup{GroupId: b(MaxGroupIDSize)}}}}}
		}
		fast, slow := Validate(f), validate(f.ProtoReflect())
		if (fast == nil) != (slow == nil) {
			t.Fatalf("frame %d: Validate %v, reflective check %v", i, fast, slow)
		}
		if slow == nil && i%4 != 3 && !fastValid(f) {
			t.Fatalf("frame %d within limits not accepted by the fast path", i)
		}
		if slow == nil {
			accepted++
		} else {
			refused++
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("accepted %d, refused %d: the test did not exercise both outcomes", accepted, refused)
	}
}
