package blob

import "testing"

// FuzzParseRange: whatever the Range header, a satisfiable answer lies
// within the blob and is never empty.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-", "bytes=3-6", "bytes=-5", "bytes=9-2", "bytes=1-2,4-5", "bytes=-0", "items=1-2", "bytes= 5 - 7"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		start, n, partial, ok := parseRange(h, size)
		if !ok {
			return
		}
		if start < 0 || n < 0 || start+n > size || (partial && n == 0) || (!partial && (start != 0 || n != size)) {
			t.Fatalf("parseRange(%q, %d) = %d, %d, %v", h, size, start, n, partial)
		}
	})
}
