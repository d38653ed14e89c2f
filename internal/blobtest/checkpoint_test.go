package blobtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/minio/crc64nvme"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/server/blob"
	"github.com/parley-im/parley/server/store"
)

// TestCheckpoints sends one long append request that stalls midway, and
// checks that while it is still open the database already records the
// offsets of the checkpoints passed (durable progress a crash of the
// server would keep), and that a request cut off afterwards records what
// arrived.
func TestCheckpoints(t *testing.T) {
	const checkpoint = 1 << 20
	forEachBackend(t, blob.Config{Checkpoint: checkpoint}, func(t *testing.T, e *env) {
		const size = 5 * checkpoint
		id := createRaw(t, e, "token-alice", size)
		bid, err := blob.ParseID(id)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("checkpoint "), size/11+1)[:size]
		pr, pw := io.Pipe()
		req, _ := http.NewRequest(http.MethodPatch, e.srv.URL+"/v1/blobs/"+id, pr)
		req.ContentLength = size
		req.Header.Set("Authorization", "Bearer token-alice")
		req.Header.Set(blob.HeaderOffset, "0")
		done := make(chan error, 1)
		go func() {
			resp, err := e.srv.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		const sent = 3*checkpoint + checkpoint/2
		if _, err := pw.Write(data[:sent]); err != nil {
			t.Fatal(err)
		}
		// The request is open; its checkpoints are in the database.
		recorded := func() int64 {
			b, err := e.st.Blob(context.Background(), store.BlobID(bid))
			if err != nil {
				t.Fatal(err)
			}
			return b.Offset
		}
		deadline := time.Now().Add(20 * time.Second)
		for recorded() < 3*checkpoint && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := recorded(); got != 3*checkpoint {
			t.Fatalf("while the request is open the record says %d, want the checkpoint at %d", got, 3*checkpoint)
		}
		// Cut the request: what arrived is recorded.
		pw.CloseWithError(errors.New("cut"))
		<-done
		if got := headOffset(t, e, filecrypt.BlobID(bid)); got != sent {
			t.Fatalf("after the cut HEAD says %d, want %d", got, sent)
		}
		// The rest, then finish with the checksum of the whole.
		if s, _, o := raw(t, e, "PATCH", "/v1/blobs/"+id, "token-alice",
			map[string]string{blob.HeaderOffset: strconv.Itoa(sent)}, string(data[sent:])); s != 204 || o != strconv.Itoa(size) {
			t.Fatalf("rest: %d offset %s", s, o)
		}
		if s, code, _ := raw(t, e, "POST", "/v1/blobs/"+id+"/finish", "token-alice",
			map[string]string{blob.HeaderChecksum: crcHex(data)}, ""); s != 200 {
			t.Fatalf("finish: %d %s", s, code)
		}
	})
}

// crcHex is the Upload-CRC64 value of data.
func crcHex(data []byte) string {
	h := crc64nvme.New()
	h.Write(data)
	return hex.EncodeToString(binary.BigEndian.AppendUint64(nil, h.Sum64()))
}
