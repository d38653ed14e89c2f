// Package canary is the plaintext canary: after an end-to-end test, it
// scans everything the server wrote (its data folder with the SQLite
// database and its -wal and -shm files, its blob folder, its captured logs)
// for the test's message texts and reports every hit.
//
// A text counts as found in any of the forms a careless server could have
// written it in: UTF-8, UTF-16 (little and big endian), and base64 (the
// standard and the URL alphabet, at each of the three byte alignments a
// text can have inside a longer base64 string).
//
//	canary.Check(t, canary.Sources{Dirs: []string{srv.Dir}, Logs: [][]byte{srv.Logs()}}, texts)
//
// Texts must be at least [MinLen] bytes long so that their base64 forms are
// long enough not to match by chance.
package canary

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"
)

// MinLen is the shortest text Scan accepts.
const MinLen = 8

// ErrTooShort is returned for a text shorter than MinLen.
var ErrTooShort = errors.New("canary: text shorter than canary.MinLen")

// ErrNothingScanned is returned when the sources hold no file and no log:
// a scan of nothing would pass vacuously.
var ErrNothingScanned = errors.New("canary: no files or logs to scan")

// Sources names what to scan.
type Sources struct {
	// Dirs are walked recursively; every regular file is read whole.
	Dirs []string
	// Files are read whole (for example a log file).
	Files []string
	// Logs are captured log outputs.
	Logs [][]byte
}

// Hit is one occurrence of a text.
type Hit struct {
	// Text is the secret that was found.
	Text string
	// Form is the encoding it was found in ("utf-8", "utf-16le", ...).
	Form string
	// Where is the file path, or "log N".
	Where string
	// Offset is the byte offset of the match.
	Offset int
}

func (h Hit) String() string {
	return fmt.Sprintf("%q (%s) in %s at offset %d", h.Text, h.Form, h.Where, h.Offset)
}

// pattern is one encoded form of a text.
type pattern struct {
	text, form string
	b          []byte
}

// forms returns the encodings of text that Scan looks for.
func forms(text string) []pattern {
	ps := []pattern{{text, "utf-8", []byte(text)}}
	u := utf16.Encode([]rune(text))
	le := make([]byte, 0, 2*len(u))
	be := make([]byte, 0, 2*len(u))
	for _, r := range u {
		le = append(le, byte(r), byte(r>>8))
		be = append(be, byte(r>>8), byte(r))
	}
	ps = append(ps, pattern{text, "utf-16le", le}, pattern{text, "utf-16be", be})
	// Inside a longer base64 string a text starts at byte offset 0, 1 or 2
	// of a 3-byte group. Skipping j bytes aligns it; only whole groups
	// encode to characters that do not depend on the neighbouring bytes.
	b := []byte(text)
	for j := range 3 {
		n := (len(b) - j) / 3 * 3
		if n < 3 {
			continue
		}
		part := b[j : j+n]
		ps = append(ps,
			pattern{text, fmt.Sprintf("base64 (offset %d)", j), []byte(base64.RawStdEncoding.EncodeToString(part))},
			pattern{text, fmt.Sprintf("base64url (offset %d)", j), []byte(base64.RawURLEncoding.EncodeToString(part))})
	}
	return ps
}

// Scan reads every source and returns every hit of every text in any of
// its forms.
func Scan(src Sources, texts []string) ([]Hit, error) {
	var ps []pattern
	for _, t := range texts {
		if len(t) < MinLen {
			return nil, fmt.Errorf("failed to scan for %q: %w", t, ErrTooShort)
		}
		ps = append(ps, forms(t)...)
	}
	// Every pattern is at least 8 bytes long (MinLen bytes of text give at
	// least 8 base64 characters), so one pass over each file looks up the
	// 8 bytes at every offset: the cost does not grow with the number of
	// texts.
	byPrefix := make(map[uint64][]pattern, len(ps))
	for _, p := range ps {
		k := binary.LittleEndian.Uint64(p.b[:8])
		byPrefix[k] = append(byPrefix[k], p)
	}
	var hits []Hit
	scanned := 0
	search := func(where string, data []byte) {
		scanned++
		for i := 0; i+8 <= len(data); i++ {
			cands, ok := byPrefix[binary.LittleEndian.Uint64(data[i:i+8])]
			if !ok {
				continue
			}
			for _, p := range cands {
				if bytes.HasPrefix(data[i:], p.b) {
					hits = append(hits, Hit{Text: p.text, Form: p.form, Where: where, Offset: i})
				}
			}
		}
	}
	for _, dir := range src.Dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) { // e.g. a WAL removed at checkpoint
					return nil
				}
				return err
			}
			search(path, data)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("failed to walk %s: %w", dir, err)
		}
	}
	for _, f := range src.Files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", f, err)
		}
		search(f, data)
	}
	for i, l := range src.Logs {
		search(fmt.Sprintf("log %d", i), l)
	}
	if scanned == 0 {
		return nil, ErrNothingScanned
	}
	return hits, nil
}

// Check runs Scan and fails the test on any hit or error.
func Check(t testing.TB, src Sources, texts []string) {
	t.Helper()
	hits, err := Scan(src, texts)
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	for _, h := range hits {
		t.Errorf("canary: server data holds plaintext %s", h)
	}
}
