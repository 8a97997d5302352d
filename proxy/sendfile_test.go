package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// TestLargeDocumentsBySendfile: documents above spillMin are sent from
// files in rendered/ (sendfile, corked). What the client gets must be the
// document, whole, in every representation, to many clients at once.
func TestLargeDocumentsBySendfile(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)

	served := map[string][]byte{} // representation -> identity bytes
	sizes := map[int64]bool{}     // Content-Length of every body sent
	for _, tc := range []struct{ name, accept, enc string }{
		{"full", "application/json", ""},
		{"full", "application/json", "gzip"},
		{"abbreviated", corgi, ""},
		{"abbreviated", corgi, "gzip"},
	} {
		for round := range 2 { // rendered, then from the memory tier
			resp, body := g.get("/typescript", "Accept", tc.accept, "Accept-Encoding", tc.enc)
			if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) {
				t.Fatalf("%s %s round %d: %d, Content-Length %d, %d bytes", tc.name, tc.enc, round, resp.StatusCode, resp.ContentLength, len(body))
			}
			sizes[resp.ContentLength] = true
			if tc.enc == "gzip" {
				if resp.Header.Get("Content-Encoding") != "gzip" {
					t.Fatalf("%s: not gzip-encoded", tc.name)
				}
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("%s gzip: %v", tc.name, err)
				}
			}
			var doc struct {
				Name     string
				Versions map[string]json.RawMessage
			}
			if err := json.Unmarshal(body, &doc); err != nil || doc.Name != "typescript" || len(doc.Versions) < 1000 {
				t.Fatalf("%s %s: not the document (%v, %q, %d versions)", tc.name, tc.enc, err, doc.Name, len(doc.Versions))
			}
			if prev, ok := served[tc.name]; ok && !bytes.Equal(prev, body) {
				t.Fatalf("%s %s round %d differs from the identity bytes", tc.name, tc.enc, round)
			}
			served[tc.name] = body
		}
	}

	// The four bodies are files in rendered/, of the sizes sent.
	dir := filepath.Join(g.data, "rendered")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range entries {
		info, _ := e.Info()
		if sizes[info.Size()] {
			files++
		}
	}
	if files != 4 {
		t.Errorf("rendered/ holds %d files of the sizes sent, want 4: %v", files, entries)
	}

	// Many clients at once: every handle starts at the beginning.
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for range 24 {
		wg.Go(func() {
			resp, err := http.Get(g.url + "/typescript")
			if err != nil {
				mu.Lock()
				bad++
				mu.Unlock()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(b, served["full"]) {
				mu.Lock()
				bad++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if bad > 0 {
		t.Errorf("%d of 24 concurrent clients got other bytes", bad)
	}

	// HEAD announces the length and sends no body.
	req, _ := http.NewRequest("HEAD", g.url+"/typescript", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(served["full"])) {
		t.Errorf("HEAD: %d, %d body bytes, Content-Length %s", resp.StatusCode, len(b), resp.Header.Get("Content-Length"))
	}

	// Shutting down removes the files.
	g.srv.Shutdown(t.Context())
	g.srv.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rendered/ not emptied at close: %d files", len(entries))
	}
}
