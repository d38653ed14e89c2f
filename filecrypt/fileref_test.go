package filecrypt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func sampleRef() FileRef {
	r := FileRef{Key: testKey(9), Size: 12345, Name: "holiday photo é.jpg", MediaType: "image/jpeg", Origin: "example.org"}
	r.Blob[0], r.Hash[31] = 1, 2
	return r
}

func TestFileRefRoundTrip(t *testing.T) {
	r := sampleRef()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseFileRef(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != r {
		t.Fatalf("round trip: got %+v, want %+v", got, r)
	}
	if _, err := ParseFileRef(append(b, 0)); !errors.Is(err, ErrFileRef) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
	for i := range b {
		if _, err := ParseFileRef(b[:i]); !errors.Is(err, ErrFileRef) {
			t.Fatalf("truncation to %d bytes accepted: %v", i, err)
		}
	}
}

func TestFileRefRejectsBadFields(t *testing.T) {
	for _, mut := range []func(*FileRef){
		func(r *FileRef) { r.Name = "" },
		func(r *FileRef) { r.Name = ".." },
		func(r *FileRef) { r.Name = "a/b" },
		func(r *FileRef) { r.Name = `a\b` },
		func(r *FileRef) { r.Name = "a\nb" },
		func(r *FileRef) { r.Name = "\xff" },
		func(r *FileRef) { r.Name = strings.Repeat("a", MaxNameLen+1) },
		func(r *FileRef) { r.MediaType = "image/\x01" },
		func(r *FileRef) { r.Origin = "a b" },
		func(r *FileRef) { r.Origin = strings.Repeat("a", MaxOriginLen+1) },
		func(r *FileRef) { r.Size = -1 },
		func(r *FileRef) { r.Size = MaxSize + 1 },
	} {
		r := sampleRef()
		mut(&r)
		if _, err := r.MarshalBinary(); !errors.Is(err, ErrFileRef) {
			t.Errorf("%+v: marshal accepted it (%v)", r, err)
		}
	}
	// The decoder rejects the same field values when they arrive on the wire.
	r := sampleRef()
	b, _ := r.MarshalBinary()
	nameAt := 1 + 3*32 + 8 + 1
	b[nameAt] = '/'
	if _, err := ParseFileRef(b); !errors.Is(err, ErrFileRef) {
		t.Errorf("slash in decoded name accepted: %v", err)
	}
	b[0] = 2
	if _, err := ParseFileRef(b); !errors.Is(err, ErrFileRef) {
		t.Errorf("version 2 accepted: %v", err)
	}
}

func TestBlobIDText(t *testing.T) {
	var id BlobID
	for i := range id {
		id[i] = byte(i * 7)
	}
	got, err := ParseBlobID(id.String())
	if err != nil || got != id {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, s := range []string{"", "abc", id.String() + "A", strings.Repeat("!", 43), id.String()[:42] + "B"} {
		if _, err := ParseBlobID(s); err == nil {
			t.Errorf("ParseBlobID(%q) accepted", s)
		}
	}
}

func FuzzParseFileRef(f *testing.F) {
	r := sampleRef()
	b, _ := r.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseFileRef(data)
		if err != nil {
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded ref does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("encoding is not canonical")
		}
	})
}
