package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/feed"
)

// auditService is a fake audit endpoint that records what it receives.
type auditService struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	calls  int
}

func newAuditService(t *testing.T) *auditService {
	a := &auditService{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.bodies = append(a.bodies, string(b))
		a.calls++
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/advisories/bulk") {
			w.Write([]byte(`{"ms":[{"id":1,"url":"https://example/GHSA-1","title":"ReDoS","severity":"high","vulnerable_versions":"<2.0.0"}]}`))
			return
		}
		w.Write([]byte(`{"advisories":{}}`))
	}))
	t.Cleanup(a.Close)
	return a
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func (p *publisher) post(path string, body []byte, gzipped bool) (*http.Response, []byte) {
	req, _ := http.NewRequest("POST", p.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestAuditNeverLeaksPrivateNames(t *testing.T) {
	a := newAuditService(t)
	p := publishGate(t, func(c *config.Config) {
		c.Feeds["main"].Audit = a.URL
		c.Feeds["main"].OwnedScopes = []string{"@corp"}
	})
	if status, body := p.publish("@acme/private-lib", "1.0.0", nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	bulk := []byte(`{"@acme/private-lib":["1.0.0"],"@corp/internal":["2.0.0"],"ms":["1.0.0"]}`)
	resp, body := p.post("/-/npm/v1/security/advisories/bulk", gz(bulk), true)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "GHSA-1") {
		t.Fatalf("bulk audit: %d %s", resp.StatusCode, body)
	}
	// The same audit again is answered from memory.
	p.post("/-/npm/v1/security/advisories/bulk", gz(bulk), true)
	quick := []byte(`{"name":"secret-project","version":"1.0.0","requires":{"@acme/private-lib":"^1.0.0","ms":"^1.0.0"},
		"dependencies":{"@acme/private-lib":{"version":"1.0.0","requires":{"@corp/internal":"2.0.0"},"dependencies":{"@corp/internal":{"version":"2.0.0"}}},"ms":{"version":"1.0.0"}}}`)
	resp, body = p.post("/-/npm/v1/security/audits/quick", quick, false)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "advisories") {
		t.Fatalf("quick audit: %d %s", resp.StatusCode, body)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls != 2 {
		t.Errorf("audit service called %d times, want 2 (the repeated bulk audit is cached)", a.calls)
	}
	for _, b := range a.bodies {
		for _, secret := range []string{"@acme/private-lib", "@corp/internal", "secret-project"} {
			if strings.Contains(b, secret) {
				t.Errorf("the audit service saw %q: %s", secret, b)
			}
		}
		if !strings.Contains(b, `"ms"`) {
			t.Errorf("the public name was dropped: %s", b)
		}
	}
}

func TestAuditRefusesBombsAndReportsFailures(t *testing.T) {
	a := newAuditService(t)
	p := publishGate(t, func(c *config.Config) { c.Feeds["main"].Audit = a.URL })
	bomb := gz(bytes.Repeat([]byte(" "), 80<<20))
	resp, body := p.post("/-/npm/v1/security/advisories/bulk", bomb, true)
	if resp.StatusCode != 413 || !json.Valid(body) {
		t.Errorf("gzip bomb: %d %s", resp.StatusCode, body)
	}
	resp, _ = p.post("/-/npm/v1/security/advisories/bulk", []byte("not json"), false)
	if resp.StatusCode != 400 {
		t.Errorf("not JSON: %d", resp.StatusCode)
	}
	a.Close()
	resp, body = p.post("/-/npm/v1/security/advisories/bulk", []byte(`{"ms":["1.0.0"]}`), false)
	if resp.StatusCode != 502 || strings.Contains(string(body), "{}") && !strings.Contains(string(body), "error") {
		t.Errorf("audit service down: %d %s, want a 502 error, never an empty report", resp.StatusCode, body)
	}
}

func TestAuditOff(t *testing.T) {
	p := publishGate(t, func(c *config.Config) { c.Feeds["main"].Audit = "off" })
	resp, body := p.post("/-/npm/v1/security/advisories/bulk", []byte(`{}`), false)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "turned off") {
		t.Errorf("audit off: %d %s", resp.StatusCode, body)
	}
}

func TestSearchFindsLocalPackages(t *testing.T) {
	p := publishGate(t)
	p.publish("@acme/widget-kit", "1.0.0", func(d, v map[string]any) { v["description"] = "widgets for everyone" })
	p.publish("other-thing", "1.0.0", nil)
	_, body := p.get("/-/v1/search?text=widget&size=5")
	var r struct {
		Objects []feed.SearchObject
		Total   int
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 1 || r.Objects[0].Package.Name != "@acme/widget-kit" || r.Objects[0].Package.Scope != "acme" {
		t.Errorf("search: %s", body)
	}
}
