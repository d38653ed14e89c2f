package canary

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/wire"
)

const secret = "canary-Ünïcode-7f3a9c"

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func forms16(le bool) []byte {
	var out []byte
	for _, r := range utf16.Encode([]rune(secret)) {
		if le {
			out = append(out, byte(r), byte(r>>8))
		} else {
			out = append(out, byte(r>>8), byte(r))
		}
	}
	return out
}

// TestCanaryFindsPlantedStrings is the positive control: a text planted in
// every form and place the scan covers is found there, and a clean folder
// gives no hit.
func TestCanaryFindsPlantedStrings(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "clean.db", []byte("nothing to see here"))
	if hits, err := Scan(Sources{Dirs: []string{dir}}, []string{secret}); err != nil || len(hits) != 0 {
		t.Fatalf("clean folder: hits %v, err %v", hits, err)
	}
	write(t, dir, "server.db-wal", []byte("xx"+secret+"yy"))
	write(t, dir, "blobs/ab/cd", append([]byte{0, 1}, forms16(true)...))
	write(t, dir, "server.db-shm", append([]byte{9}, forms16(false)...))
	for prefix := range 3 { // every base64 alignment inside a longer string
		enc := base64.StdEncoding.EncodeToString(append([]byte(strings.Repeat("p", prefix)), secret...))
		write(t, dir, "b64/"+string(rune('a'+prefix)), []byte(enc))
	}
	enc := base64.URLEncoding.EncodeToString([]byte("??>>" + secret))
	logs := [][]byte{[]byte(`{"msg":"x","v":"` + enc + `"}`)}
	hits, err := Scan(Sources{Dirs: []string{dir}, Logs: logs}, []string{secret})
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]bool{}
	for _, h := range hits {
		where[filepath.Base(h.Where)] = true
	}
	for _, w := range []string{"server.db-wal", "cd", "server.db-shm", "a", "b", "c", "log 0"} {
		if !where[w] {
			t.Errorf("planted text in %s not found; hits: %v", w, hits)
		}
	}
	if where["clean.db"] {
		t.Errorf("false hit in clean.db")
	}
}

// TestCanaryRefusesVacuousScans: nothing to scan, or a text too short to
// be a canary, is an error rather than a pass.
func TestCanaryRefusesVacuousScans(t *testing.T) {
	if _, err := Scan(Sources{Dirs: []string{t.TempDir()}}, []string{secret}); err != ErrNothingScanned {
		t.Errorf("empty sources: err %v, want ErrNothingScanned", err)
	}
	if _, err := Scan(Sources{Logs: [][]byte{nil}}, []string{"short"}); err == nil {
		t.Error("short text accepted")
	}
}

// TestCanaryFindsPlaintextInRealServerStore: a payload sent as if a client
// forgot to encrypt is found in the real server's SQLite files (database or
// WAL), so the scan does reach where the server keeps messages.
func TestCanaryFindsPlaintextInRealServerStore(t *testing.T) {
	srv := testserver.Start(t)
	a := srv.NewAccount(t)
	c := srv.Connect(t, a.Devices[0])
	ctx := testserver.Context(t)
	id := testserver.MessageID()
	leak := "unencrypted-" + secret
	_, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
		To: a.Devices[0].WireRef(), MessageId: id[:], Kind: wire.MessageKind_MESSAGE_KIND_OTHER, Data: []byte(leak),
	}}}}})
	if err != nil {
		t.Fatalf("mailbox send: %v", err)
	}
	src := Sources{Dirs: []string{srv.Dir}, Logs: [][]byte{srv.Logs()}}
	hits, err := Scan(src, []string{leak, "never-sent-" + secret})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, h := range hits {
		texts = append(texts, h.Text)
	}
	if !slices.Contains(texts, leak) {
		t.Fatalf("plaintext stored by the real server not found (files under %s)", srv.Dir)
	}
	if slices.Contains(texts, "never-sent-"+secret) {
		t.Fatal("found a text that was never sent")
	}
}

// BenchmarkScanManyTexts: the scan is one pass per file whatever the number
// of texts (the chaos long run checks 10,000).
func BenchmarkScanManyTexts(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir, "db"), data, 0o600); err != nil {
		b.Fatal(err)
	}
	var texts []string
	for i := range 10000 {
		texts = append(texts, "chaos-text-"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+itoa(i))
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if hits, err := Scan(Sources{Dirs: []string{dir}}, texts); err != nil || len(hits) != 0 {
			b.Fatal(hits, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
