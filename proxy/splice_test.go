package proxy

import (
	"bytes"
	"testing"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// TestSplicedValidators: a document sent for another base has an ETag of
// its own, revalidates (304) for that base only, and keeps the
// representation's content type.
func TestSplicedValidators(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	canon, _ := g.get("/ms", "Accept", corgi)
	a, body := g.get("/ms", "Accept", corgi, "Host", "a.example")
	b, _ := g.get("/ms", "Accept", corgi, "Host", "b.example")
	ea, eb, ec := a.Header.Get("ETag"), b.Header.Get("ETag"), canon.Header.Get("ETag")
	if ea == "" || ea == eb || ea == ec || eb == ec {
		t.Fatalf("ETags for three bases: %q %q %q", ec, ea, eb)
	}
	if !bytes.Contains(body, []byte(`"http://a.example/ms/-/ms-`)) || a.Header.Get("Content-Type") != "application/vnd.npm.install-v1+json" {
		t.Errorf("spliced document: %s %s", a.Header.Get("Content-Type"), body)
	}
	for _, tc := range []struct {
		host, inm string
		want      int
	}{
		{"a.example", ea, 304},
		{"b.example", ea, 200}, // another base's validator
		{"a.example", ec, 200},
	} {
		if r, _ := g.get("/ms", "Accept", corgi, "Host", tc.host, "If-None-Match", tc.inm); r.StatusCode != tc.want {
			t.Errorf("Host %s, If-None-Match %s: %d, want %d", tc.host, tc.inm, r.StatusCode, tc.want)
		}
	}
}
