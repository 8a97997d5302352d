package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// v1Tree is a quick/full audit request (npm 6's tree, as yarn 1 and pnpm
// send it) with semver 7.5.1, which GHSA-c2qf-rxjj-qqgw affects.
const v1Tree = `{"name":"app","version":"1.0.0","install":[],"remove":[],"metadata":{},
"requires":{"semver":"7.5.1","ms":"2.1.3"},
"dependencies":{"semver":{"version":"7.5.1","integrity":"sha512-x"},"ms":{"version":"2.1.3"}}}`

// withAudit sets feeds.main.audit.
func withAudit(mode string) gateOpt {
	return func(c *config.Config) { c.Feeds["main"].Audit = mode }
}

// securityRequests counts the requests under /-/npm/v1/security/ that
// reached the fake upstream.
func securityRequests(up *fakeupstream.Server) int {
	n := 0
	for _, p := range up.Requests().Paths {
		if strings.Contains(p, "/security/") {
			n++
		}
	}
	return n
}

// audit: local answers each audit form from the database and sends
// nothing to the connector.
func TestOSVLocalAudit(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, withOSV(osvDir(t)), withAudit(config.AuditLocal))
	p := &publisher{gate: g}
	resp, body := p.post("/-/npm/v1/security/advisories/bulk", gz([]byte(`{"semver":["7.5.1"],"ms":["2.1.3"],"npmgate-e2e-malware":["1.0.0"]}`)), true)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "GHSA-c2qf-rxjj-qqgw") || !strings.Contains(string(body), `"severity":"moderate"`) ||
		!strings.Contains(string(body), "MAL-0000-npmgate-e2e-malware") || strings.Contains(string(body), `"ms"`) {
		t.Errorf("bulk: %d %s", resp.StatusCode, body)
	}
	for _, api := range []string{"/-/npm/v1/security/audits/quick", "/-/npm/v1/security/audits"} {
		resp, body := p.post(api, []byte(v1Tree), false)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"module_name":"semver"`) || !strings.Contains(string(body), `"moderate":1`) {
			t.Errorf("%s: %d %s", api, resp.StatusCode, body)
		}
	}
	resp, body = p.post("/-/npm/v1/security/advisories/bulk", []byte(`{"semver":"7.5.1"}`), false)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error"`) {
		t.Errorf("a bad bulk request: %d %s", resp.StatusCode, body)
	}
	if n := securityRequests(up); n != 0 {
		t.Errorf("the connector received %d audit requests, want 0", n)
	}
}

// audit: local+connector merges the connector's answer into the local one.
func TestOSVLocalConnectorAudit(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	a := newAuditService(t)
	// The connector serves the recorded registry and audits.
	conn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/-/npm/v1/security/") {
			a.Config.Handler.ServeHTTP(w, r)
			return
		}
		up.ServeHTTP(w, r)
	}))
	t.Cleanup(conn.Close)
	g := startGate(t, up, withOSV(osvDir(t)), withAudit(config.AuditLocalConnector), func(c *config.Config) { c.Connectors["up"].URL = conn.URL })
	p := &publisher{gate: g}
	resp, body := p.post("/-/npm/v1/security/advisories/bulk", []byte(`{"semver":["7.5.1"],"ms":["1.0.0"]}`), false)
	// GHSA-1 is the connector's (for ms); GHSA-c2qf-rxjj-qqgw the database's.
	if resp.StatusCode != 200 || !strings.Contains(string(body), "GHSA-c2qf-rxjj-qqgw") || !strings.Contains(string(body), "https://example/GHSA-1") {
		t.Errorf("bulk: %d %s", resp.StatusCode, body)
	}
	if n := calls(a); n != 1 {
		t.Errorf("the connector received %d audit requests, want 1", n)
	}
	resp, body = p.post("/-/npm/v1/security/audits/quick", []byte(v1Tree), false)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"module_name":"semver"`) {
		t.Errorf("quick: %d %s", resp.StatusCode, body)
	}
	if n := calls(a); n != 2 {
		t.Errorf("the connector received %d audit requests, want 2", n)
	}
}

func calls(a *auditService) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}
