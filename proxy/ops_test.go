package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// TestReadyzDataDirectory: /readyz fails, saying why, while the data
// directory cannot take a write or has less free space than
// cache.min_free.
func TestReadyzDataDirectory(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	huge := config.Size(1 << 62)
	zero := config.Size(0)
	tests := []struct {
		name    string
		minFree *config.Size // nil: the default
		breakIt func(t *testing.T, data string)
		status  int
		says    string
	}{
		{"default", nil, nil, 200, ""},
		{"min_free above the free space", &huge, nil, 503, "less than cache.min_free"},
		{"min_free 0 disables the check", &zero, nil, 200, ""},
		{"tmp replaced by a file (fails for root too)", nil, func(t *testing.T, data string) {
			tmp := filepath.Join(data, "tmp")
			if err := os.RemoveAll(tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tmp, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, 503, "data directory is not writable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGate(t, up, func(c *config.Config) {
				if tt.minFree != nil {
					c.Cache.MinFree = tt.minFree
				}
			})
			if tt.breakIt != nil {
				tt.breakIt(t, g.data)
			}
			resp, body := g.get("/readyz")
			if resp.StatusCode != tt.status {
				t.Fatalf("/readyz: %d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 200 {
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tt.says) {
				t.Errorf("/readyz body %s, want an error saying %q", body, tt.says)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// searchRecorder is a connector that records every request and finds
// nothing.
type searchRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	uris []string
}

func newSearchRecorder(t *testing.T) *searchRecorder {
	r := &searchRecorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		uri, _ := url.QueryUnescape(req.URL.RequestURI())
		r.mu.Lock()
		r.uris = append(r.uris, strings.ToLower(uri))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if req.URL.Path == "/-/v1/search" {
			w.Write([]byte(`{"objects":[],"total":0}`))
			return
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"not found"}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *searchRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.uris
	r.uris = nil
	return u
}

// TestSearchKeepsPrivateWordsFromConnectors: every term of a search,
// qualifiers' values included, is checked against the feed's private
// names, scopes and people; a query touching one is answered from local
// packages alone and no request to the connector carries the word.
func TestSearchKeepsPrivateWordsFromConnectors(t *testing.T) {
	rec := newSearchRecorder(t)
	p := publishGate(t, func(c *config.Config) {
		c.Connectors["up"].URL = rec.URL
		c.Feeds["main"].OwnedScopes = []string{"@acme"}
	})
	if err := p.srv.auth.Users.Set("carol", "carol-password"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"@acme/widget", "@internal/tool", "secret-sauce"} {
		if st, body := p.publish(name, "1.0.0", func(d, v map[string]any) {
			v["keywords"] = []any{"confidential"}
			v["author"] = "Dana Doe <dana@example.com>"
		}); st != 200 && st != 201 {
			t.Fatalf("publish %s: %d %s", name, st, body)
		}
	}
	rec.take()
	tests := []struct {
		text    string
		private string   // must reach no connector; "" for a public query
		local   []string // the local packages answered
	}{
		{"scope:acme", "acme", []string{"@acme/widget"}},
		{"scope:@acme", "acme", []string{"@acme/widget"}},
		{"scope:internal", "internal", []string{"@internal/tool"}},
		{"keywords:lodash,secret-sauce", "secret-sauce", nil},
		{"keywords:-secret-sauce", "secret-sauce", nil},
		{"author:dana", "", nil},                                                              // not the author's whole name
		{"author:alice", "alice", []string{"@acme/widget", "@internal/tool", "secret-sauce"}}, // the publisher
		{"maintainer:alice confidential", "alice", []string{"@acme/widget", "@internal/tool", "secret-sauce"}},
		{"maintainer:carol", "carol", nil},
		{"@acme/widget", "acme", []string{"@acme/widget"}},
		{"acme tools", "acme", nil},
		{"parser secret-sauce", "secret-sauce", nil},
		{"scope:types keywords:parser", "", nil},
		{"keywords:confidential", "", []string{"@acme/widget", "@internal/tool", "secret-sauce"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			resp, body := p.get("/-/v1/search?" + url.Values{"text": {tt.text}}.Encode())
			if resp.StatusCode != 200 {
				t.Fatalf("search: %d %s", resp.StatusCode, body)
			}
			var r struct{ Objects []feed.SearchObject }
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range r.Objects {
				got = append(got, o.Package.Name)
			}
			if !slices.Equal(got, tt.local) {
				t.Errorf("answered %v, want %v", got, tt.local)
			}
			sent := rec.take()
			if tt.private == "" {
				if len(sent) != 1 || !strings.Contains(sent[0], strings.ToLower(tt.text)) {
					t.Errorf("a public query reached the connector as %q, want it forwarded once", sent)
				}
				return
			}
			for _, u := range sent {
				if strings.Contains(u, tt.private) {
					t.Errorf("the connector was sent %q, which holds the private %q", u, tt.private)
				}
			}
		})
	}
}

// TestMetricsAccess: /metrics is open by default, or limited by
// metrics.access and metrics.token; whoever reads it sees no series of a
// feed they may not read; pprof is for those who may read everything.
func TestMetricsAccess(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	const token = "metrics-token-0123456789abcdef"
	alice, bob := basicAuth("alice", "alice-password"), basicAuth("bob", "bob-password")
	type check struct {
		authz      string
		status     int
		seesTeam   bool // a series labelled feed="team"
		pprofState int
	}
	tests := []struct {
		name   string
		access []string
		token  string
		checks []check
	}{
		{"default: anyone, each sees the feeds they read", nil, "", []check{
			{"", 200, false, 403},
			{bob, 200, false, 403},
			{alice, 200, true, 200},
			{"Bearer npmg_wrong", 401, false, 401},
		}},
		{"token only", nil, token, []check{
			{"", 401, false, 401},
			{"Bearer " + token, 200, true, 200},
			{"Bearer " + token + "x", 401, false, 401},
			{alice, 403, false, 403},
		}},
		{"a group and the token", []string{"devs"}, token, []check{
			{"", 401, false, 401},
			{bob, 403, false, 403},
			{alice, 200, true, 200},
			{"Bearer " + token, 200, true, 200},
		}},
		{"authenticated users", []string{"$authenticated"}, "", []check{
			{"", 401, false, 401},
			{bob, 200, false, 403},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGate(t, up, func(c *config.Config) {
				c.Feeds["team"] = &config.Feed{Connectors: []string{"up"}, Access: config.Access{Read: []string{"devs"}, Publish: []string{"devs"}}}
				c.Auth.Groups = map[string][]string{"devs": {"alice"}}
				c.Metrics.Pprof = true
				c.Metrics.Token = tt.token
				c.Metrics.Access = tt.access
				if tt.access == nil && tt.token == "" {
					c.Metrics.Access = []string{"$anonymous"} // as validation defaults it
				}
			})
			for _, u := range []string{"alice", "bob"} {
				g.srv.auth.Users.Set(u, u+"-password")
			}
			if resp, body := g.do("GET", "/npm/team/ms", alice, nil); resp.StatusCode != 200 {
				t.Fatalf("alice reads team: %d %s", resp.StatusCode, body)
			}
			g.get("/ms")
			for _, c := range tt.checks {
				resp, body := g.do("GET", "/metrics", c.authz, nil)
				if resp.StatusCode != c.status {
					t.Errorf("/metrics with %q: %d %s, want %d", c.authz, resp.StatusCode, body, c.status)
					continue
				}
				if c.status != 200 {
					var e struct{ Error string }
					if json.Unmarshal(body, &e) != nil || e.Error == "" {
						t.Errorf("/metrics with %q: %d body %s, want a JSON error", c.authz, c.status, body)
					}
					if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
						t.Errorf("/metrics with %q: 401 without WWW-Authenticate", c.authz)
					}
				} else {
					if !strings.Contains(string(body), `feed="main"`) {
						t.Errorf("/metrics with %q lacks the public feed's series", c.authz)
					}
					if got := strings.Contains(string(body), `feed="team"`); got != c.seesTeam {
						t.Errorf("/metrics with %q: shows feed=\"team\" %v, want %v", c.authz, got, c.seesTeam)
					}
				}
				if resp, _ := g.do("GET", "/debug/pprof/", c.authz, nil); resp.StatusCode != c.pprofState {
					t.Errorf("/debug/pprof/ with %q: %d, want %d", c.authz, resp.StatusCode, c.pprofState)
				}
			}
		})
	}
}

// loginFrom sends npm login's PUT from a given loopback address.
func (g *gate) loginFrom(t *testing.T, from, user, password string) (*http.Response, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": user, "password": password})
	req, _ := http.NewRequest("PUT", g.url+"/-/user/org.couchdb.user:"+user, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("login from %s: %v", from, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestLoginThrottleIsPerAddress: wrong passwords for carol from one
// address are a 429 there, saying when to retry, and do not lock carol
// out from another address.
func TestLoginThrottleIsPerAddress(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	g.srv.auth.Users.Set("carol", "carol-password")
	const attacker, office = "127.0.0.2", "127.0.0.3"
	for range 5 {
		if resp, body := g.loginFrom(t, attacker, "carol", "guess"); resp.StatusCode != 401 {
			t.Fatalf("wrong password: %d %s", resp.StatusCode, body)
		}
	}
	resp, body := g.loginFrom(t, attacker, "carol", "carol-password")
	var e struct{ Error string }
	json.Unmarshal(body, &e)
	if resp.StatusCode != 429 || !strings.Contains(e.Error, "try again in") {
		t.Errorf("from the attacker's address: %d %s, want a 429 saying when to retry", resp.StatusCode, body)
	}
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	resp, body = g.loginFrom(t, office, "carol", "carol-password")
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"token"`) {
		t.Errorf("carol from her office: %d %s, want 201 with a token", resp.StatusCode, body)
	}
}
