package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
)

// userToken makes name a user of the gate and returns a bearer token of
// theirs.
func (p *publisher) userToken(name string) string {
	p.t.Helper()
	if err := p.srv.auth.Users.Set(name, "correct-horse-"+name); err != nil {
		p.t.Fatal(err)
	}
	tok, _, err := p.srv.auth.Tokens.Create(auth.NewToken{User: name}, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	return "Bearer " + tok
}

// writeDoc is what npm deprecate, npm owner and npm unpublish start from.
func (p *publisher) writeDoc(name string) map[string]any {
	p.t.Helper()
	_, b := p.do("GET", "/"+strings.Replace(name, "/", "%2f", 1)+"?write=true", p.authz, nil)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		p.t.Fatalf("?write=true: %v %s", err, b)
	}
	return doc
}

func (p *publisher) maintainers(name string) []string {
	p.t.Helper()
	var doc struct {
		Maintainers []struct{ Name string }
	}
	_, b := p.do("GET", "/"+strings.Replace(name, "/", "%2f", 1), p.authz, nil)
	json.Unmarshal(b, &doc)
	var names []string
	for _, m := range doc.Maintainers {
		names = append(names, m.Name)
	}
	return names
}

// TestOnlyMaintainersChangeAPackage: alice publishes own-pkg; bob, who has
// publish rights on the feed, can change nothing of it and is told who
// can; carol, a feed admin, can do it all.
func TestOnlyMaintainersChangeAPackage(t *testing.T) {
	p := publishGate(t, func(c *config.Config) { c.Feeds["main"].Access.Admin = []string{"carol"} })
	if status, body := p.publish("own-pkg", "1.0.0", nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	bob, carol := p.userToken("bob"), p.userToken("carol")
	deprecate := func() []byte {
		doc := p.writeDoc("own-pkg")
		doc["versions"].(map[string]any)["1.0.0"].(map[string]any)["deprecated"] = "gone"
		b, _ := json.Marshal(doc)
		return b
	}
	owners := func() []byte {
		doc := p.writeDoc("own-pkg")
		b, _ := json.Marshal(map[string]any{"_id": doc["_id"], "_rev": doc["_rev"], "maintainers": []map[string]string{{"name": "bob"}}})
		return b
	}
	rev := func() string { return p.writeDoc("own-pkg")["_rev"].(string) }
	writes := []struct {
		name         string
		method, path string
		body         func() []byte
	}{
		{"publish a new version", "PUT", "/own-pkg", func() []byte {
			return publishDoc("own-pkg", "1.1.0", pkgTarball(t, "own-pkg", "1.1.0"), nil)
		}},
		{"add a dist-tag", "PUT", "/-/package/own-pkg/dist-tags/beta", func() []byte { return []byte(`"1.0.0"`) }},
		{"deprecate", "PUT", "/own-pkg", deprecate},
		{"change maintainers", "PUT", "/own-pkg/-rev/REV", owners},
		{"unpublish a version", "DELETE", "/own-pkg/-/own-pkg-1.0.0.tgz/-rev/REV", nil},
		{"unpublish the package", "DELETE", "/own-pkg/-rev/REV", nil},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			before, _ := os.ReadFile(p.localFile("own-pkg"))
			var body []byte
			if w.body != nil {
				body = w.body()
			}
			path := strings.Replace(w.path, "REV", rev(), 1)
			resp, b := p.do(w.method, path, bob, body)
			var e struct{ Error string }
			json.Unmarshal(b, &e)
			if resp.StatusCode != 403 || !strings.Contains(e.Error, "alice") || !strings.Contains(e.Error, "npm owner add bob own-pkg") {
				t.Errorf("bob: %d %s, want a 403 naming the maintainer and npm owner add", resp.StatusCode, b)
			}
			if after, _ := os.ReadFile(p.localFile("own-pkg")); !bytes.Equal(before, after) {
				t.Error("a refused change changed the stored document")
			}
		})
	}
	// The admin may do the same (the unpublishes come last, below).
	for _, w := range writes {
		if strings.HasPrefix(w.name, "unpublish") {
			continue
		}
		t.Run("admin "+w.name, func(t *testing.T) {
			var body []byte
			if w.body != nil {
				body = w.body()
			}
			if resp, b := p.do(w.method, strings.Replace(w.path, "REV", rev(), 1), carol, body); resp.StatusCode != 200 {
				t.Errorf("admin: %d %s", resp.StatusCode, b)
			}
		})
	}
	if m := p.maintainers("own-pkg"); len(m) != 1 || m[0] != "bob" {
		t.Errorf("maintainers after the admin's change: %v", m)
	}
	// Now bob maintains it, and alice is the one refused.
	if resp, b := p.do("PUT", "/-/package/own-pkg/dist-tags/next", bob, []byte(`"1.1.0"`)); resp.StatusCode != 200 {
		t.Errorf("new maintainer: %d %s", resp.StatusCode, b)
	}
	if resp, b := p.do("DELETE", "/own-pkg/-rev/"+rev(), carol, nil); resp.StatusCode != 200 {
		t.Errorf("admin unpublish: %d %s", resp.StatusCode, b)
	}
}

// TestOwnerAddAndRemove is npm owner add and rm: a PUT of _id, _rev and
// maintainers, without a name.
func TestOwnerAddAndRemove(t *testing.T) {
	p := publishGate(t)
	p.srv.auth.Users.Set("alice", "correct-horse-alice")
	if status, body := p.publish("owned", "1.0.0", nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	bob := p.userToken("bob")
	put := func(names ...string) (int, string) {
		doc := p.writeDoc("owned")
		ms := []map[string]string{}
		for _, n := range names {
			ms = append(ms, map[string]string{"name": n, "email": n + "@example.com"})
		}
		b, _ := json.Marshal(map[string]any{"_id": doc["_id"], "_rev": doc["_rev"], "maintainers": ms})
		resp, rb := p.do("PUT", "/owned/-rev/"+doc["_rev"].(string), p.authz, b)
		return resp.StatusCode, string(rb)
	}
	tests := []struct {
		name   string
		owners []string
		status int
		want   []string
	}{
		{"add a user", []string{"alice", "bob"}, 200, []string{"alice", "bob"}},
		{"add someone who is not a user", []string{"alice", "bob", "mallory"}, 404, []string{"alice", "bob"}},
		{"remove everyone", nil, 400, []string{"alice", "bob"}},
		{"remove a user", []string{"alice"}, 200, []string{"alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := put(tt.owners...)
			if status != tt.status || !json.Valid([]byte(body)) {
				t.Errorf("%d %s, want %d", status, body, tt.status)
			}
			if got := p.maintainers("owned"); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("maintainers %v, want %v", got, tt.want)
			}
		})
	}
	// What the client said about emails is not kept, nor the removed
	// owner's rights.
	if resp, _ := p.do("PUT", "/-/package/owned/dist-tags/nexttag", bob, []byte(`"1.0.0"`)); resp.StatusCode != 403 {
		t.Errorf("a removed owner: %d", resp.StatusCode)
	}
}

// TestMaintainersComeFromTheServer: what a publish body says about
// maintainers and _npmUser is ignored.
func TestMaintainersComeFromTheServer(t *testing.T) {
	p := publishGate(t)
	status, body := p.publish("self-named", "1.0.0", func(d, v map[string]any) {
		d["maintainers"] = []map[string]string{{"name": "mallory"}}
		v["maintainers"] = []map[string]string{{"name": "mallory"}}
		v["_npmUser"] = map[string]string{"name": "mallory"}
	})
	if status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	_, doc := p.get("/self-named", "Accept", "application/json")
	if strings.Contains(string(doc), "mallory") || !strings.Contains(string(doc), `"maintainers":[{"name":"alice"}]`) {
		t.Errorf("document: %s", doc)
	}
}

// TestPublishOverAConnectorIsRefused: a name the upstream serves cannot
// be published by a user (the local package would hide every upstream
// version); the upstream package stays as it was. A name claimed in
// owned_names can, and an admin can.
func TestPublishOverAConnectorIsRefused(t *testing.T) {
	p := publishGate(t, func(c *config.Config) {
		c.Feeds["main"].OwnedNames = []string{"semver", "js-*"}
		c.Feeds["main"].Access.Admin = []string{"carol"}
	})
	_, before := p.get("/ms", "Accept", "application/json")
	_, tgzBefore := p.get("/ms/-/ms-2.1.3.tgz")
	tests := []struct {
		name, pkg string
		authz     string
		status    int
		says      string
	}{
		{"a public name", "ms", p.authz, 403, "served by connector"},
		{"a public name with a hint", "debug", p.authz, 403, "feeds.main.owned_names"},
		{"a name claimed in owned_names", "semver", p.authz, 200, ""},
		{"a name claimed by a prefix", "js-tokens", p.authz, 200, ""},
		{"a name nobody serves", "nobody-has-this", p.authz, 200, ""},
		{"a public name by an admin", "chalk", p.userToken("carol"), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := publishDoc(tt.pkg, "99.0.0", pkgTarball(t, tt.pkg, "99.0.0"), nil)
			resp, b := p.do("PUT", "/"+tt.pkg, tt.authz, body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.says) {
				t.Errorf("%d %s, want %d saying %q", resp.StatusCode, b, tt.status, tt.says)
			}
		})
	}
	if _, err := os.Stat(p.localFile("ms")); err == nil {
		t.Error("the refused publish stored a document")
	}
	_, after := p.get("/ms", "Accept", "application/json")
	_, tgzAfter := p.get("/ms/-/ms-2.1.3.tgz")
	if !bytes.Equal(before, after) || !bytes.Equal(tgzBefore, tgzAfter) {
		t.Error("the upstream package changed after a refused publish")
	}
	p.up.ResetStats()
	p.get("/semver", "Accept", "application/json")
	p.get("/js-tokens/-/js-tokens-4.0.0.tgz")
	p.get("/js-other", "Accept", "application/json")
	if n := p.up.Requests().Total; n != 0 {
		t.Errorf("claimed names were asked upstream: %v", p.up.Requests().Paths)
	}
}

// TestPublishWhenTheConnectorIsDown fails closed: without knowing whether
// upstream serves the name, a user's first publish of it is refused;
// claimed names do not depend on upstream.
func TestPublishWhenTheConnectorIsDown(t *testing.T) {
	p := publishGate(t, func(c *config.Config) { c.Feeds["main"].OwnedNames = []string{"mine"} })
	p.up.SetDown(true)
	status, body := p.publish("not-yet-known", "1.0.0", nil)
	if status < 502 || status > 504 || !strings.Contains(body, "owned_names") {
		t.Errorf("upstream down: %d %s, want a 502/503 saying to claim the name", status, body)
	}
	if _, err := os.Stat(p.localFile("not-yet-known")); err == nil {
		t.Error("the refused publish stored a document")
	}
	if status, body := p.publish("mine", "1.0.0", nil); status != 200 {
		t.Errorf("claimed name with upstream down: %d %s", status, body)
	}
	// Once local, a name is the feed's: later versions never ask upstream.
	p.up.SetDown(false)
	if status, body := p.publish("fresh-name", "1.0.0", nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	p.up.SetDown(true)
	if status, body := p.publish("fresh-name", "1.0.1", nil); status != 200 {
		t.Errorf("second version with upstream down: %d %s", status, body)
	}
}

// TestMaintainersOfOldDocuments: a document stored before packages had
// maintainers gets the publisher of its first version.
func TestMaintainersOfOldDocuments(t *testing.T) {
	p := publishGate(t)
	old := `{"packument":{"_id":"legacy","_rev":"2-ab","name":"legacy","dist-tags":{"latest":"1.1.0"},
"versions":{"1.1.0":{"name":"legacy","version":"1.1.0","_npmUser":{"name":"alice"},"dist":{"integrity":"sha512-AAAA","shasum":"00","tarball":"https://npmgate.invalid/legacy/-/legacy-1.1.0.tgz"}},
"1.0.0":{"name":"legacy","version":"1.0.0","_npmUser":{"name":"dave"},"dist":{"integrity":"sha512-AAAA","shasum":"00","tarball":"https://npmgate.invalid/legacy/-/legacy-1.0.0.tgz"}}},
"time":{"created":"2024-01-01T00:00:00.000Z","1.0.0":"2024-01-01T00:00:00.000Z","1.1.0":"2024-02-01T00:00:00.000Z"},"maintainers":null},
"published":{"1.0.0":"sha512-AAAA","1.1.0":"sha512-AAAA"}}`
	if err := os.MkdirAll(filepath.Dir(p.localFile("legacy")), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.localFile("legacy"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := p.maintainers("legacy"); strings.Join(m, ",") != "dave" {
		t.Errorf("maintainers of an old document: %v, want the first version's publisher dave", m)
	}
	if status, body := p.publish("legacy", "1.2.0", nil); status != 403 || !strings.Contains(body, "dave") {
		t.Errorf("alice publishing over dave's old package: %d %s", status, body)
	}
	dave := p.userToken("dave")
	if resp, b := p.do("PUT", "/legacy", dave, publishDoc("legacy", "1.2.0", pkgTarball(t, "legacy", "1.2.0"), nil)); resp.StatusCode != 200 {
		t.Errorf("dave: %d %s", resp.StatusCode, b)
	}
}

// TestStars is npm star, unstar and stars: a PUT of _id, _rev and users
// that may change only the caller's own entry; read rights are enough.
func TestStars(t *testing.T) {
	p := publishGate(t, func(c *config.Config) {
		c.Feeds["main"].Access = config.Access{Read: []string{"$authenticated"}, Publish: []string{"alice"}}
	})
	if status, body := p.publish("starry", "1.0.0", nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	bob := p.userToken("bob") // may read, not publish
	star := func(authz, name string, users map[string]bool) (int, string) {
		_, b := p.do("GET", "/"+name+"?write=true", authz, nil)
		var doc struct {
			ID  string `json:"_id"`
			Rev string `json:"_rev"`
		}
		json.Unmarshal(b, &doc)
		body, _ := json.Marshal(map[string]any{"_id": doc.ID, "_rev": doc.Rev, "users": users})
		resp, rb := p.do("PUT", "/"+name, authz, body)
		return resp.StatusCode, string(rb)
	}
	stars := func(user string) string {
		_, b := p.do("GET", `/-/_view/starredByUser?key="`+user+`"`, bob, nil)
		return string(b)
	}
	tests := []struct {
		name   string
		authz  string
		pkg    string
		users  map[string]bool
		status int
		alice  string // what npm stars shows for alice, then bob
		bob    string
	}{
		{"alice stars", p.authz, "starry", map[string]bool{"alice": true}, 200, `"value":"starry"`, `"rows":[]`},
		{"bob stars, without publish rights", bob, "starry", map[string]bool{"alice": true, "bob": true}, 200, `"value":"starry"`, `"value":"starry"`},
		{"bob unstars alice", bob, "starry", map[string]bool{"bob": true}, 403, `"value":"starry"`, `"value":"starry"`},
		{"bob stars for carol", bob, "starry", map[string]bool{"alice": true, "bob": true, "carol": true}, 403, `"value":"starry"`, `"value":"starry"`},
		{"bob unstars", bob, "starry", map[string]bool{"alice": true}, 200, `"value":"starry"`, `"rows":[]`},
		{"a connector's package", bob, "ms", map[string]bool{"bob": true}, 404, `"value":"starry"`, `"rows":[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(p.localFile("starry"))
			status, body := star(tt.authz, tt.pkg, tt.users)
			if status != tt.status || !json.Valid([]byte(body)) {
				t.Errorf("%d %s, want %d", status, body, tt.status)
			}
			if after, _ := os.ReadFile(p.localFile("starry")); status != 200 && !bytes.Equal(before, after) {
				t.Error("a refused star changed the document")
			}
			if a, b := stars("alice"), stars("bob"); !strings.Contains(a, tt.alice) || !strings.Contains(b, tt.bob) {
				t.Errorf("npm stars: alice %s, bob %s", a, b)
			}
		})
	}
	if m := p.maintainers("starry"); strings.Join(m, ",") != "alice" {
		t.Errorf("stars changed the maintainers: %v", m)
	}
}

// TestClaimedNamesNeverLeave: names claimed in owned_names are not sent
// to a connector by audits, searches or package requests, before or
// after their first publish.
func TestClaimedNamesNeverLeave(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.RequestURI+" "+string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(r.URL.Path, "/-/v1/search"):
			w.Write([]byte(`{"objects":[],"total":0}`))
		case strings.Contains(r.URL.Path, "/security/"):
			w.Write([]byte(`{}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"Not found"}`))
		}
	}))
	t.Cleanup(rec.Close)
	p := publishGate(t, func(c *config.Config) {
		c.Connectors["up"].URL = rec.URL
		c.Feeds["main"].Audit = rec.URL
		c.Feeds["main"].OwnedNames = []string{"acme-*", "internal-tool"}
	})
	requests := func() {
		p.post("/-/npm/v1/security/advisories/bulk", []byte(`{"acme-tool":["1.0.0"],"internal-tool":["1.0.0"],"ms":["1.0.0"]}`), false)
		p.get("/-/v1/search?text=acme-tool+internal-tool+ms&size=5")
		p.get("/acme-tool", "Accept", corgi)
		p.get("/internal-tool/-/internal-tool-1.0.0.tgz")
		p.get("/-/npm/v1/attestations/acme-tool@1.0.0")
	}
	requests()
	if status, body := p.publish("acme-tool", "1.0.0", nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	requests()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("nothing reached the connector: the test proves nothing")
	}
	for _, s := range seen {
		if strings.Contains(s, "acme-tool") || strings.Contains(s, "internal-tool") {
			t.Errorf("the connector saw a claimed name: %s", s)
		}
	}
}

// TestReloadRefusesAClaimChange: owned_names and owned_scopes need a
// restart, and a reload that changes them says so instead of keeping the
// old claims silently; a change of the admins applies at once.
func TestReloadRefusesAClaimChange(t *testing.T) {
	p := publishGate(t)
	if status, body := p.publish("by-alice", "1.0.0", nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	bob := p.userToken("bob")
	feedCopy := func(edit func(*config.Feed)) *config.Config {
		cfg := *p.srv.cfg
		f := *cfg.Feeds["main"]
		edit(&f)
		cfg.Feeds = map[string]*config.Feed{"main": &f}
		return &cfg
	}
	if err := p.srv.Reload(feedCopy(func(f *config.Feed) { f.OwnedNames = []string{"ms"} })); err == nil || !strings.Contains(err.Error(), "owned_names") {
		t.Errorf("reload changing owned_names: %v, want a refusal naming it", err)
	}
	if err := p.srv.Reload(feedCopy(func(f *config.Feed) { f.OwnedScopes = []string{"@x"} })); err == nil {
		t.Error("reload changing owned_scopes was accepted")
	}
	if resp, _ := p.do("PUT", "/-/package/by-alice/dist-tags/next", bob, []byte(`"1.0.0"`)); resp.StatusCode != 403 {
		t.Errorf("bob before he is an admin: %d", resp.StatusCode)
	}
	if err := p.srv.Reload(feedCopy(func(f *config.Feed) { f.Access.Admin = []string{"bob"} })); err != nil {
		t.Fatal(err)
	}
	if resp, b := p.do("PUT", "/-/package/by-alice/dist-tags/next", bob, []byte(`"1.0.0"`)); resp.StatusCode != 200 {
		t.Errorf("bob after the reload made him an admin: %d %s", resp.StatusCode, b)
	}
}
