package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// memRemote is an in-memory Remote that counts writes per prefix.
type memRemote struct {
	mu    sync.Mutex
	blobs map[BlobName][]byte
	puts  map[string]int
}

func newMemRemote() *memRemote {
	return &memRemote{blobs: map[BlobName][]byte{}, puts: map[string]int{}}
}

func (r *memRemote) Put(_ context.Context, name BlobName, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobs[name] = bytes.Clone(data)
	r.puts[string(name)[:2]]++
	return nil
}

func (r *memRemote) Get(_ context.Context, name BlobName) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.blobs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return bytes.Clone(b), nil
}

func (r *memRemote) List(_ context.Context, prefix string) ([]BlobName, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []BlobName
	for n := range r.blobs {
		if strings.HasPrefix(string(n), prefix) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func (r *memRemote) Delete(_ context.Context, name BlobName) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.blobs, name)
	return nil
}

// snapshot copies every blob.
func (r *memRemote) snapshot() map[BlobName][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[BlobName][]byte{}
	for n, b := range r.blobs {
		out[n] = bytes.Clone(b)
	}
	return out
}

// The test HTTP protocol: PUT, GET and DELETE /blobs/NAME (NAME is
// "s/<hex>" or "k/<hex>"); GET /blobs/?prefix=P lists names, one a line.
// Missing blobs are 404.
func newBlobServer(t testing.TB, backing *memRemote) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := BlobName(strings.TrimPrefix(req.URL.Path, "/blobs/"))
		ctx := req.Context()
		switch {
		case req.Method == http.MethodGet && name == "":
			names, _ := backing.List(ctx, req.URL.Query().Get("prefix"))
			for _, n := range names {
				fmt.Fprintln(w, n)
			}
		case req.Method == http.MethodGet:
			b, err := backing.Get(ctx, name)
			if err != nil {
				http.NotFound(w, req)
				return
			}
			w.Write(b)
		case req.Method == http.MethodPut:
			b, err := io.ReadAll(io.LimitReader(req.Body, MaxBucket+1))
			if err != nil || len(b) > MaxBucket {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
			backing.Put(ctx, name, b)
			w.WriteHeader(http.StatusNoContent)
		case req.Method == http.MethodDelete:
			backing.Delete(ctx, name)
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "bad method", http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// httpRemote speaks the test protocol.
type httpRemote struct {
	base   string
	client *http.Client
}

func newHTTPRemote(t testing.TB, backing *memRemote) *httpRemote {
	srv := newBlobServer(t, backing)
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(tr.CloseIdleConnections)
	return &httpRemote{base: srv.URL + "/blobs/", client: &http.Client{Transport: tr}}
}

func (r *httpRemote) do(ctx context.Context, method, url string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, MaxBucket+1))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, ErrNotFound
	case resp.StatusCode/100 != 2:
		return nil, fmt.Errorf("http %d", resp.StatusCode)
	}
	return out, nil
}

func (r *httpRemote) Put(ctx context.Context, name BlobName, data []byte) error {
	_, err := r.do(ctx, http.MethodPut, r.base+string(name), data)
	return err
}

func (r *httpRemote) Get(ctx context.Context, name BlobName) ([]byte, error) {
	return r.do(ctx, http.MethodGet, r.base+string(name), nil)
}

func (r *httpRemote) List(ctx context.Context, prefix string) ([]BlobName, error) {
	b, err := r.do(ctx, http.MethodGet, r.base+"?prefix="+prefix, nil)
	if err != nil {
		return nil, err
	}
	var out []BlobName
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, BlobName(l))
		}
	}
	return out, nil
}

func (r *httpRemote) Delete(ctx context.Context, name BlobName) error {
	_, err := r.do(ctx, http.MethodDelete, r.base+string(name), nil)
	return err
}
