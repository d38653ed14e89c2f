package client

import (
	"strings"
	"testing"

	"github.com/parley-im/parley/client/archive"
)

// FuzzArchiveList: whatever the server answers to a list request, the
// parser returns only well-formed names under the prefix, and never more
// than the bound.
func FuzzArchiveList(f *testing.F) {
	f.Add("s/"+strings.Repeat("ab", 32)+"\n", archive.SegmentPrefix)
	f.Add("k/"+strings.Repeat("0f", 32)+"\nk/zz\n\n", archive.KeyRecordPrefix)
	f.Add("s/../../etc\n", archive.SegmentPrefix)
	f.Fuzz(func(t *testing.T, body, prefix string) {
		if prefix != archive.SegmentPrefix {
			prefix = archive.KeyRecordPrefix
		}
		names, err := parseArchiveList(strings.NewReader(body), prefix)
		if err != nil {
			return
		}
		if len(names) > archiveMaxList {
			t.Fatalf("%d names", len(names))
		}
		for _, n := range names {
			s := string(n)
			if !strings.HasPrefix(s, prefix) || !validArchiveName(s[len(prefix):]) {
				t.Fatalf("bad name %q", s)
			}
		}
	})
}
