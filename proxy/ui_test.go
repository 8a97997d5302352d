package proxy

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/html"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/ui"

	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// browserAccept is what Chromium and Firefox send for a page.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

// Client Accept headers: npm's (the corgi), yarn's and pnpm's, curl's.
var clientAccepts = []string{
	"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
	"application/json",
	"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", // pnpm
	"*/*",
	"",
}

func TestUIRoutesBrowsersOnly(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{Block: []string{"ms@<2.1.0"}}))
	for _, path := range []string{"/", "/ms", "/@types%2fnode", "/npm/main/", "/npm/main/ms", "/-/ui/", "/-/ui/package/main/ms"} {
		resp, body := g.get(path, "Accept", browserAccept)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("browser GET %s: %d %s %.200s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	for _, accept := range clientAccepts {
		for _, path := range []string{"/ms", "/npm/main/ms"} {
			resp, body := g.get(path, "Accept", accept)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") {
				t.Errorf("client (Accept %q) GET %s: %d %s %.100s", accept, path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
	}
	// Registry URLs send a browser to the pages under /-/ui/, where its
	// session cookie goes.
	for path, want := range map[string]string{"/": "/-/ui/", "/npm/main/": "/-/ui/", "/ms": "/-/ui/package/main/ms",
		"/@types%2fnode": "/-/ui/package/main/@types/node", "/npm/main/@types%2Fnode": "/-/ui/package/main/@types/node"} {
		if resp, _ := g.uiDo(t, path, "", nil); resp.StatusCode != 302 || resp.Header.Get("Location") != want {
			t.Errorf("browser at %s: %d to %q, want %s", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// A tarball opened from the page is the tarball, whatever the Accept.
	resp, _ := g.get("/ms/-/ms-2.1.3.tgz", "Accept", browserAccept)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") == "text/html; charset=utf-8" {
		t.Errorf("tarball from a browser: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// hostileReadme holds what a malicious package author would put in a
// README: scripts, event handlers, javascript: links, frames, SVG with
// onload, CSS url(), remote images (plain, in a badge's link, behind a
// <picture>'s sources) and markup meant to break the page.
const hostileReadme = "# evil\n\n" +
	"<script>alert('script')</script>\n\n" +
	"<img src=x onerror=\"alert('onerror')\">\n\n" +
	"[click](javascript:alert('link'))\n\n" +
	"<a href=\"javascript:alert('a')\">a</a> <a href=\"JaVaScRiPt:alert(1)\">b</a>\n\n" +
	"<iframe src=\"https://evil.example/frame\"></iframe>\n\n" +
	"<svg onload=\"alert('svg')\"><circle r=\"5\"/></svg>\n\n" +
	"<div style=\"background:url(https://evil.example/track.png)\">styled</div>\n\n" +
	"<style>body{background:url(https://evil.example/css.png)}</style>\n\n" +
	"![tracker](https://evil.example/pixel.gif)\n\n" +
	"<img src=\"https://evil.example/remote.png\" alt=\"remote\">\n\n" +
	"[![build](https://evil.example/badge.svg)](https://ci.example/job)\n\n" +
	"<picture><source srcset=\"https://evil.example/s.png\"><img src=\"https://evil.example/fallback.png\" alt=\"fallback\"></picture>\n\n" +
	"<form action=\"https://evil.example/phish\"><input name=p></form>\n\n" +
	"<object data=\"https://evil.example/x.swf\"></object><embed src=\"https://evil.example/e\">\n\n" +
	"<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">\n\n" +
	"</main></body></html><p>after the page</p>\n\n" +
	"[a fine link](https://example.com/docs)\n\n" +
	"```js\nconsole.log('<b>code</b>')\n```\n"

// uiDoc is a package with a version of every kind: allowed, blocked by a
// range, deprecated, with install scripts, with provenance, with
// dependencies; its README is hostileReadme. Its times are fixed, so
// its page is the same on every run.
func uiDoc() []byte {
	integrity := "sha512-" + strings.Repeat("A", 86) + "=="
	ver := func(v, extra string) string {
		return fmt.Sprintf(`%q:{"name":"evil","version":%q,"license":"MIT","description":"A <b>package</b> & its \"README\"",%s"dist":{"tarball":"https://x/evil/-/evil-%s.tgz","integrity":%q,"unpackedSize":12345}}`,
			v, v, extra, v, integrity)
	}
	readme, _ := json.Marshal(hostileReadme)
	return []byte(`{"name":"evil","description":"A <b>package</b> & its \"README\"","readme":` + string(readme) +
		`,"dist-tags":{"latest":"2.0.0","beta":"3.0.0-beta.1"},"versions":{` +
		ver("1.0.0", `"deprecated":"use 2 <script>x</script>",`) + "," +
		ver("1.5.0", `"scripts":{"postinstall":"node steal.js"},`) + "," +
		ver("2.0.0", `"dependencies":{"ms":"^2.1.0","@types/node":"*","bad name":"1"},"_npmUser":{"name":"ci","trustedPublisher":{"id":"github"}},`) + "," +
		ver("3.0.0-beta.1", "") +
		`},"time":{"created":"2020-01-01T00:00:00.000Z","modified":"2020-04-01T00:00:00.000Z","1.0.0":"2020-01-01T00:00:00.000Z","1.5.0":"2020-02-01T00:00:00.000Z","2.0.0":"2020-03-01T00:00:00.000Z","3.0.0-beta.1":"2020-04-01T00:00:00.000Z"}}`)
}

// uiGate serves evil (see uiDoc) under a policy that blocks evil@<1.2.0
// and install scripts.
func uiGate(t *testing.T) *gate {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	up.SetPackumentOverride("evil", 200, "application/json", uiDoc())
	return startGate(t, up, withFilter(t, "up", &filter.Spec{Block: []string{"evil@<1.2.0"}, InstallScripts: "block"}))
}

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the UI tests")

// golden compares a page with testdata/ui/name, the gate's and the
// upstream's random ports written as placeholders.
func golden(t *testing.T, g *gate, name string, body []byte) {
	t.Helper()
	got := strings.ReplaceAll(string(body), g.url, "http://REGISTRY")
	got = strings.ReplaceAll(got, g.up.URL, "http://UPSTREAM")
	path := filepath.Join("testdata", "ui", name)
	if *updateGolden {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from its golden file (go test ./proxy -run %s -update, then read the diff):\n%s", name, t.Name(), got)
	}
}

func TestUIPackagePageGolden(t *testing.T) {
	g := uiGate(t)
	resp, body := g.get("/evil", "Accept", browserAccept)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	golden(t, g, "package-evil.html", body)
	page := string(body)
	// What the viewer must read: every version's verdict and why.
	for _, want := range []string{
		"<h1>evil</h1>",
		"blocked</strong> (block): evil@1.0.0",
		"blocked</strong> (install-scripts): evil@1.5.0",
		"deprecated: use 2 &lt;script&gt;x&lt;/script&gt;",
		"npm install evil@2.0.0 --registry=" + g.url + "/",
		"yarn add evil@2.0.0 --registry " + g.url + "/",
		"pnpm add evil@2.0.0 --registry=" + g.url + "/",
		`<a href="/evil/-/evil-2.0.0.tgz">Download the tarball</a> (12.1 kB unpacked)`,
		`<a href="/-/ui/package/main/ms">ms</a>`, `<a href="/-/ui/package/main/@types/node">@types/node</a>`,
		"provenance", "install scripts",
		"A &lt;b&gt;package&lt;/b&gt; &amp; its &#34;README&#34;",
		`<a href="https://example.com/docs" rel="nofollow noreferrer noopener" target="_blank">a fine link</a>`,
		// Images are links the viewer may follow, never loaded.
		`<a class="remote-image" href="https://evil.example/pixel.gif" rel="nofollow noreferrer noopener" target="_blank">Image: tracker (from evil.example)</a>`,
		`<a class="remote-image" href="https://evil.example/remote.png" rel="nofollow noreferrer noopener" target="_blank">Image: remote (from evil.example)</a>`,
		`<a class="remote-image" href="https://evil.example/fallback.png" rel="nofollow noreferrer noopener" target="_blank">Image: fallback (from evil.example)</a>`,
		`<a href="https://ci.example/job" rel="nofollow noreferrer noopener" target="_blank">Image: build (from evil.example)</a>`,
		"Image: untitled",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	assertHarmless(t, page)
}

// assertHarmless fails when a page could run script, load anything from
// another origin or be broken by what it shows.
func assertHarmless(t *testing.T, page string) {
	t.Helper()
	lower := strings.ToLower(page)
	for _, bad := range []string{"<script", "onerror", "onload", "javascript:", "<iframe", "<svg", "<style", "url(", "<form action=\"https", "<object", "<embed", "http-equiv", "<img", "<picture", "<source", "src=", "srcset"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	// evil.example may be where a link goes, the viewer's to follow; in
	// any other attribute (src, srcset, style, action, a <link>'s href)
	// the browser would go there itself.
	z := html.NewTokenizer(strings.NewReader(page))
	for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		for _, a := range tok.Attr {
			if strings.Contains(strings.ToLower(a.Val), "evil.example") && (tok.Data != "a" || a.Key != "href") {
				t.Errorf("the page loads from evil.example: <%s %s=%q>", tok.Data, a.Key, a.Val)
			}
		}
	}
	if strings.Count(lower, "</main>") != 1 || strings.Count(lower, "</body>") != 1 {
		t.Error("the README closed the page's elements")
	}
}

func TestUIHomeGolden(t *testing.T) {
	g := uiGate(t)
	g.get("/evil") // cached, as npm would have it
	g.get("/ms")
	resp, body := g.get("/", "Accept", browserAccept)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	golden(t, g, "home.html", body)
	for _, want := range []string{"Cached packages</dt><dd>2</dd>", "Blocked version ranges: evil@&lt;1.2.0.", "Versions with install scripts are blocked."} {
		if !strings.Contains(string(body), want) {
			t.Errorf("home lacks %q", want)
		}
	}
}

func TestUISearch(t *testing.T) {
	g := uiGate(t)
	for _, name := range []string{"evil", "ms", "chalk", "debug"} {
		g.get("/" + name)
	}
	before := g.up.Requests().Total
	for _, tt := range []struct {
		q    string
		want []string
		not  []string
	}{
		{"evil", []string{`href="/-/ui/package/main/evil"`, "cached from up", "1 package found"}, []string{"/package/main/ms\""}},
		{"millisecond", []string{`href="/-/ui/package/main/ms"`}, []string{"/package/main/evil"}},
		{"terminal styling", []string{"/package/main/chalk"}, nil},
		{"nothing-matches-this", []string{"0 packages found"}, nil},
	} {
		resp, body := g.get("/-/ui/search?q="+url.QueryEscape(tt.q), "Accept", browserAccept)
		if resp.StatusCode != 200 {
			t.Fatalf("%q: %d %s", tt.q, resp.StatusCode, body)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%q: results lack %q", tt.q, w)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(string(body), w) {
				t.Errorf("%q: results hold %q", tt.q, w)
			}
		}
	}
	if after := g.up.Requests().Total; after != before {
		t.Errorf("search asked upstream %d times: its words must never leave the server", after-before)
	}
}

func TestUISecurityHeaders(t *testing.T) {
	g := uiGate(t)
	for _, path := range []string{"/", "/evil", "/-/ui/", "/-/ui/search?q=e", "/-/ui/package/main/evil", "/-/ui/static/style.css", "/-/ui/nowhere", "/-/ui/package/nofeed/evil", "/no-such-package-here"} {
		resp, body := g.get(path, "Accept", browserAccept)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "style-src 'self'", "img-src 'self' data:", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, d)
			}
		}
		if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q allows script", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, h)
		}
		if resp.StatusCode >= 400 && (!strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "<h1>404")) {
			t.Errorf("%s: %d %s %.200s", path, resp.StatusCode, h.Get("Content-Type"), body)
		}
	}
}

// TestUIAccessControl: the UI shows exactly what the API serves to the
// same credentials: a feed one may not read is absent from the home page
// and from search, and its pages are 404s.
func TestUIAccessControl(t *testing.T) {
	g, _ := lockedGate(t)
	g.get("/ms", "Authorization", basicAuth("alice", "alice-password"))
	g.get("/npm/team/ms", "Authorization", basicAuth("alice", "alice-password"))
	alice, bob := basicAuth("alice", "alice-password"), basicAuth("bob", "bob-password")
	for _, tt := range []struct {
		name, authz, path string
		status            int
		want, not         []string
	}{
		{"anonymous home", "", "/-/ui/", 200, []string{"There is no feed you may read"}, []string{"feed-main", "feed-team"}},
		{"bob's home", bob, "/-/ui/", 200, []string{`id="feed-main"`}, []string{"feed-team", "team"}},
		{"alice's home", alice, "/-/ui/", 200, []string{`id="feed-main"`, `id="feed-team"`}, nil},
		{"bob searches all", bob, "/-/ui/search?q=ms", 200, []string{"/-/ui/package/main/ms"}, []string{"package/team/", "feed team"}},
		{"alice searches all", alice, "/-/ui/search?q=ms", 200, []string{"/-/ui/package/main/ms", "/-/ui/package/team/ms"}, nil},
		{"bob searches team", bob, "/-/ui/search?q=ms&feed=team", 404, nil, []string{"package/team/"}},
		{"bob opens team's package", bob, "/-/ui/package/team/ms", 404, nil, []string{"millisecond"}},
		{"bob at team's mount", bob, "/npm/team/ms", 404, nil, []string{"millisecond"}},
		{"anonymous opens main's package", "", "/-/ui/package/main/ms", 404, nil, []string{"millisecond"}},
		{"alice opens team's package", alice, "/-/ui/package/team/ms", 200, []string{"<h1>ms</h1>"}, nil},
		{"bad password", basicAuth("alice", "nope"), "/-/ui/", 401, nil, []string{"feed-main"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := g.get(tt.path, "Accept", browserAccept, "Authorization", tt.authz)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d, want %d: %.300s", resp.StatusCode, tt.status, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(string(body), w) {
					t.Errorf("page holds %q", w)
				}
			}
		})
	}
}

// uiPost sends a form (or a GET when form is nil) with the session
// cookie, without following redirects.
func (g *gate) uiDo(t *testing.T, path, cookie string, form url.Values, headers ...string) (*http.Response, string) {
	t.Helper()
	method, body := "GET", ""
	if form != nil {
		method, body = "POST", form.Encode()
	}
	req, _ := http.NewRequest(method, g.url+path, strings.NewReader(body))
	req.Header.Set("Accept", browserAccept)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: ui.SessionCookie, Value: cookie})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestUISessions: sign in with a user's password, a session cookie
// (HttpOnly, SameSite=Strict, Path=/-/ui/) backed by a token of kind
// "session" in the token store; forms need the session's CSRF token and
// the same origin; a read-only token made for CI is shown once, works,
// and is revoked from the page; one's own tokens only; sign-out revokes
// the session.
func TestUISessions(t *testing.T) {
	g, _ := lockedGate(t)
	resp, page := g.uiDo(t, "/-/ui/signin", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `<input id="password" name="password" type="password"`) {
		t.Fatalf("sign-in form: %d %.300s", resp.StatusCode, page)
	}
	resp, page = g.uiDo(t, "/-/ui/signin", "", url.Values{"username": {"alice"}, "password": {"wrong-password"}})
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 || !strings.Contains(page, "Wrong user name or password.") {
		t.Fatalf("bad password: %d %v %.300s", resp.StatusCode, resp.Cookies(), page)
	}
	resp, _ = g.uiDo(t, "/-/ui/signin", "", url.Values{"username": {"alice"}, "password": {"alice-password"}}, "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
		t.Fatalf("sign-in from another site: %d", resp.StatusCode)
	}
	resp, _ = g.uiDo(t, "/-/ui/signin", "", url.Values{"username": {"alice"}, "password": {"alice-password"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/-/ui/account" {
		t.Fatalf("sign in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	setCookie := resp.Header.Get("Set-Cookie")
	for _, attr := range []string{"npmgate_session=", "HttpOnly", "SameSite=Strict", "path=/-/ui/", "max-age=28800"} {
		if !strings.Contains(strings.ToLower(setCookie), strings.ToLower(attr)) {
			t.Errorf("session cookie %q lacks %s", setCookie, attr)
		}
	}
	if strings.Contains(setCookie, "Secure") {
		t.Errorf("a cookie over plain HTTP is Secure (the browser would drop it): %q", setCookie)
	}
	session := resp.Cookies()[0].Value
	stored, _ := g.srv.auth.Tokens.List("alice")
	if len(stored) != 1 || stored[0].Kind != "session" || stored[0].Expires.IsZero() {
		t.Fatalf("the session's token: %+v", stored)
	}
	// A session is the UI's cookie only: no credential for npm.
	if r, body := g.do("GET", "/ms", "Bearer "+session, nil); r.StatusCode != 401 {
		t.Errorf("session secret as a bearer token: %d %s", r.StatusCode, body)
	}

	resp, page = g.uiDo(t, "/-/ui/account", session, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("account: %d %.300s", resp.StatusCode, page)
	}
	for _, want := range []string{"Signed in as <strong>alice</strong>", "web UI session", "(this session)", "<li>main</li>", "<li>team</li>", "Sign out"} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token in the account page's forms")
	}
	csrf := m[1]
	countTokens := func() int { ts, _ := g.srv.auth.Tokens.List("alice"); return len(ts) }

	// Forms without the token, with another session's, or from another
	// site change nothing.
	for _, tt := range []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"no token", url.Values{"name": {"ci"}}, nil},
		{"wrong token", url.Values{"name": {"ci"}, "csrf": {"x" + csrf}}, nil},
		{"cross-site", url.Values{"name": {"ci"}, "csrf": {csrf}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"other origin", url.Values{"name": {"ci"}, "csrf": {csrf}}, []string{"Origin", "https://evil.example"}},
	} {
		resp, page := g.uiDo(t, "/-/ui/account/tokens", session, tt.form, tt.headers...)
		if resp.StatusCode != 403 || countTokens() != 1 {
			t.Errorf("%s: %d, %d tokens: %.200s", tt.name, resp.StatusCode, countTokens(), page)
		}
	}

	resp, page = g.uiDo(t, "/-/ui/account/tokens", session, url.Values{"name": {"ci build"}, "csrf": {csrf}})
	secret := regexp.MustCompile(`<code id="secret">([^<]+)</code>`).FindStringSubmatch(page)
	if resp.StatusCode != 200 || secret == nil {
		t.Fatalf("create token: %d %.500s", resp.StatusCode, page)
	}
	if r, body := g.do("GET", "/ms", "Bearer "+secret[1], nil); r.StatusCode != 200 {
		t.Errorf("the new token does not read: %d %s", r.StatusCode, body)
	}
	var ci *auth.Token
	all, _ := g.srv.auth.Tokens.List("alice")
	for _, tk := range all {
		if tk.Name == "ci build" {
			ci = tk
		}
	}
	if ci == nil || !ci.ReadOnly || ci.Expires.IsZero() {
		t.Fatalf("the CI token: %+v", ci)
	}
	if _, again := g.uiDo(t, "/-/ui/account", session, nil); strings.Contains(again, secret[1]) {
		t.Error("the secret is shown a second time")
	}

	// Another user's token cannot be revoked from alice's page.
	bobSecret, bobToken, _ := g.srv.auth.Tokens.Create(auth.NewToken{User: "bob"}, time.Now())
	if resp, _ := g.uiDo(t, "/-/ui/account/tokens/revoke", session, url.Values{"key": {bobToken.Key}, "csrf": {csrf}}); resp.StatusCode != 404 {
		t.Errorf("revoking bob's token: %d", resp.StatusCode)
	}
	if r, _ := g.do("GET", "/ms", "Bearer "+bobSecret, nil); r.StatusCode != 200 {
		t.Errorf("bob's token was revoked by alice: %d", r.StatusCode)
	}
	resp, page = g.uiDo(t, "/-/ui/account/tokens/revoke", session, url.Values{"key": {ci.Key}, "csrf": {csrf}})
	if resp.StatusCode != 200 || !strings.Contains(page, "The token was revoked.") {
		t.Fatalf("revoke: %d %.300s", resp.StatusCode, page)
	}
	if r, _ := g.do("GET", "/ms", "Bearer "+secret[1], nil); r.StatusCode != 401 {
		t.Errorf("the revoked token still reads: %d", r.StatusCode)
	}

	// Sign-out needs the form too, then revokes the session.
	if resp, _ := g.uiDo(t, "/-/ui/signout", session, url.Values{}); resp.StatusCode != 403 {
		t.Errorf("sign-out without the CSRF token: %d", resp.StatusCode)
	}
	resp, _ = g.uiDo(t, "/-/ui/signout", session, url.Values{"csrf": {csrf}})
	if resp.StatusCode != 303 || !strings.Contains(strings.ToLower(resp.Header.Get("Set-Cookie")), "max-age=0") && !strings.Contains(resp.Header.Get("Set-Cookie"), "expires=") {
		t.Errorf("sign out: %d %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	if countTokens() != 0 {
		t.Errorf("the session's token outlived sign-out: %d tokens", countTokens())
	}
	resp, page = g.uiDo(t, "/-/ui/account", session, nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/-/ui/signin" {
		t.Errorf("the old cookie after sign-out: %d %s %.200s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
}

// TestUISignInThrottled: the sign-in form goes through the same login
// throttle as npm login.
func TestUISignInThrottled(t *testing.T) {
	g, _ := lockedGate(t)
	for i := range 50 {
		resp, page := g.uiDo(t, "/-/ui/signin", "", url.Values{"username": {"alice"}, "password": {fmt.Sprintf("wrong-%d", i)}})
		if resp.StatusCode == 429 {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			return
		}
		if resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d %.200s", i, resp.StatusCode, page)
		}
	}
	t.Fatal("50 wrong passwords and no throttle")
}

// TestUISearchLocalAndPolicy: local packages are found and say so; a
// package a feed's policy refuses by name is not listed for that feed
// even when another feed has it cached.
func TestUISearchLocalAndPolicy(t *testing.T) {
	strict := filter.Spec{Exclude: []string{"chalk"}}
	pub := publishGate(t, func(c *config.Config) {
		var n yaml.Node
		if err := n.Encode(&strict); err != nil {
			t.Fatal(err)
		}
		c.Feeds["strict"] = &config.Feed{Connectors: []string{"up"}, Filter: n, Access: config.Access{Read: []string{"$anonymous"}}}
	})
	if status, body := pub.publish("@corp/widget", "1.0.0", func(doc, ver map[string]any) {
		ver["description"] = "the corporate widget kit"
		ver["keywords"] = []string{"chalkboard"}
	}); status != 201 && status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	pub.get("/chalk")
	pub.get("/ms")
	_, body := pub.get("/-/ui/search?q=chalk", "Accept", browserAccept)
	page := string(body)
	for _, want := range []string{`href="/-/ui/package/main/@corp/widget"`, `<span class="badge local">local</span>`, "the corporate widget kit", `href="/-/ui/package/main/chalk"`} {
		if !strings.Contains(page, want) {
			t.Errorf("search lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "/package/strict/chalk") {
		t.Error("the strict feed lists chalk, which its policy excludes")
	}
	if _, b := pub.get("/-/ui/search?q=ms&feed=strict", "Accept", browserAccept); !strings.Contains(string(b), `href="/-/ui/package/strict/ms"`) {
		t.Errorf("the strict feed does not list ms, which it serves:\n%s", b)
	}
	_, body = pub.get("/-/ui/", "Accept", browserAccept)
	if !strings.Contains(string(body), "Local packages</dt><dd>1</dd>") {
		t.Errorf("home does not count the local package:\n%s", body)
	}
	_, body = pub.get("/-/ui/package/main/@corp/widget", "Accept", browserAccept)
	for _, want := range []string{"<h1>@corp/widget</h1>", `<span class="badge local">local</span>`, "the corporate widget kit", "<td>local</td>"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the local package's page lacks %q", want)
		}
	}
}

// TestUICooldownSaysWhen: a version a cooldown holds back says when it
// will be allowed.
func TestUICooldownSaysWhen(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	now := time.Now()
	up.SetPackumentOverride("cool", 200, "application/json", coolDoc(now))
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{MinReleaseAge: filter.Duration(72 * time.Hour)}))
	_, body := g.get("/-/ui/package/main/cool?v=2.0.0", "Accept", browserAccept)
	when := now.Add(-time.Hour).Add(72 * time.Hour).UTC()
	// The minute may tick over between the document's time and now.
	ok := false
	for _, w := range []time.Time{when, when.Add(time.Minute), when.Add(-time.Minute)} {
		if strings.Contains(string(body), "It is allowed from "+w.Format("2006-01-02 15:04 UTC")) {
			ok = true
		}
	}
	if !ok || !strings.Contains(string(body), "blocked by the rule <strong>min-release-age</strong>") {
		t.Errorf("the cooled-down version does not say when it is allowed (%s):\n%s", when, body)
	}
}

// TestUIPagesSpendTheMissBudget: a page of a name the feed does not know
// is an upstream lookup like a packument request, within the same miss
// limit: browsing random names cannot make npmgate ask upstream without
// bound.
func TestUIPagesSpendTheMissBudget(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) {
		c.Cache.MissLimit = config.MissLimit{ClientBurst: 3, ClientPerMinute: 1, TotalBurst: 100, TotalPerMinute: 1}
	})
	statuses := []int{}
	for i := range 5 {
		resp, _ := g.get(fmt.Sprintf("/-/ui/package/main/no-such-package-%d", i), "Accept", browserAccept)
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if fmt.Sprint(statuses) != "[404 404 404 429 429]" {
		t.Errorf("statuses %v, want three 404s then 429s", statuses)
	}
	if n := g.up.Requests().Packuments; n != 3 {
		t.Errorf("%d upstream lookups, want 3", n)
	}
}

// TestUIBlockedNameSaysWhy: a package whose name the policy refuses is a
// 404 page that says which rule refuses it, and nothing is asked upstream.
func TestUIBlockedNameSaysWhy(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{Exclude: []string{"left-*"}}))
	resp, body := g.get("/-/ui/package/main/left-pad", "Accept", browserAccept)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "left-pad") || !strings.Contains(string(body), "exclude") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	if n := g.up.Requests().Total; n != 0 {
		t.Errorf("a refused name was asked upstream %d times", n)
	}
}

// TestUIHostileDocument: what an upstream document says — version keys,
// dist-tags, licences, deprecation messages, dependency names — is text
// on the page, never markup, whatever it holds.
func TestUIHostileDocument(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	integrity := "sha512-" + strings.Repeat("A", 86) + "=="
	evil := `<script>alert(1)</script>`
	doc := `{"name":"hostile","description":` + strconvQuote(evil) + `,"dist-tags":{"latest":"1.0.0",` + strconvQuote(`<img src=x onerror=alert(2)>`) + `:"1.0.0"},"versions":{` +
		`"1.0.0":{"name":"hostile","version":"1.0.0","license":` + strconvQuote(`"><svg onload=alert(3)>`) + `,"deprecated":` + strconvQuote(`javascript:alert(4)`) +
		`,"dependencies":{` + strconvQuote(`"><iframe src=//evil.example>`) + `:"1",` + strconvQuote(`javascript:alert(5)`) + `:"*"},"dist":{"tarball":"https://x/hostile/-/hostile-1.0.0.tgz","integrity":"` + integrity + `"}},` +
		strconvQuote(`2.0.0"><script>alert(6)</script>`) + `:{"name":"hostile","version":"2","dist":{"tarball":"https://x/hostile/-/h.tgz","integrity":"` + integrity + `"}}` +
		`},"time":{"1.0.0":"2020-01-01T00:00:00.000Z"}}`
	up.SetPackumentOverride("hostile", 200, "application/json", []byte(doc))
	g := startGate(t, up)
	for _, path := range []string{"/-/ui/package/main/hostile", "/-/ui/search?q=hostile"} {
		g.get("/hostile")
		resp, body := g.get(path, "Accept", browserAccept)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %.300s", path, resp.StatusCode, body)
		}
		page := strings.ToLower(string(body))
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the description as text: %.2000s", path, body)
		}
		for _, bad := range []string{"<script", "<img src=x", "<svg", "<iframe", `href="javascript:`} {
			if strings.Contains(page, bad) {
				t.Errorf("%s holds %q", path, bad)
			}
		}
	}
}

// strconvQuote is s as a JSON string.
func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestUIAdminDisablesUser: the admins of auth.admins see the users and
// disable one, which revokes everything of theirs at once; a feed's admin
// is not an admin of users; the form needs the session's CSRF token; an
// admin does not disable themselves; enabling brings the password back.
func TestUIAdminDisablesUser(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) {
		c.Feeds["main"].Access = config.Access{Read: []string{"$authenticated"}, Publish: []string{"$authenticated"}, Admin: []string{"carol"}}
		c.Auth.Groups = map[string][]string{"ops": {"alice"}}
		c.Auth.Admins = []string{"ops"}
	})
	for _, u := range []string{"alice", "bob", "carol"} {
		if err := g.srv.auth.Users.Set(u, u+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(name string) (session, csrf string) {
		t.Helper()
		resp, _ := g.uiDo(t, "/-/ui/signin", "", url.Values{"username": {name}, "password": {name + "-password"}})
		if resp.StatusCode != 303 {
			t.Fatalf("%s signs in: %d", name, resp.StatusCode)
		}
		session = resp.Cookies()[0].Value
		_, page := g.uiDo(t, "/-/ui/account", session, nil)
		return session, csrfField.FindStringSubmatch(page)[1]
	}
	bobSession, _ := signIn("bob")
	bobToken, _, _ := g.srv.auth.Tokens.Create(auth.NewToken{User: "bob", Name: "laptop"}, time.Now())
	bobWorks := func() bool {
		r, _ := g.do("GET", "/ms", "Bearer "+bobToken, nil)
		return r.StatusCode == 200
	}
	if !bobWorks() {
		t.Fatal("bob's token does not read")
	}

	// carol administers a feed, not users.
	carol, carolCSRF := signIn("carol")
	if _, page := g.uiDo(t, "/-/ui/account", carol, nil); strings.Contains(page, `id="users"`) {
		t.Error("a feed's admin sees the users")
	}
	if resp, page := g.uiDo(t, "/-/ui/account/users/disable", carol, url.Values{"user": {"bob"}, "csrf": {carolCSRF}}); resp.StatusCode != 403 || !bobWorks() {
		t.Errorf("carol disables bob: %d %.200s", resp.StatusCode, page)
	}

	alice, csrf := signIn("alice")
	_, page := g.uiDo(t, "/-/ui/account", alice, nil)
	for _, want := range []string{`<h2 id="users">Users</h2>`, `<th scope="row">alice (you)</th><td>active</td>`, `<th scope="row">bob</th><td>active</td>`, `aria-label="Disable bob"`} {
		if !strings.Contains(page, want) {
			t.Errorf("admin's account page lacks %q", want)
		}
	}
	if strings.Contains(page, `aria-label="Disable alice"`) {
		t.Error("alice is offered to disable herself")
	}
	if !strings.Contains(page, "<p>3 users.</p>") {
		t.Error("the users section does not count the users")
	}
	if _, found := g.uiDo(t, "/-/ui/account?user=BO", alice, nil); !strings.Contains(found, `1 user matches “BO”`) {
		t.Errorf("finding a user: %.3000s", found)
	} else if strings.Contains(found, `<th scope="row">carol</th>`) || !strings.Contains(found, `<th scope="row">bob</th>`) {
		t.Error("the filter did not filter")
	}
	for _, tt := range []struct {
		name   string
		form   url.Values
		status int
	}{
		{"no CSRF token", url.Values{"user": {"bob"}}, 403},
		{"another session's token", url.Values{"user": {"bob"}, "csrf": {carolCSRF}}, 403},
		{"herself", url.Values{"user": {"alice"}, "csrf": {csrf}}, 403},
		{"nobody", url.Values{"user": {"nobody"}, "csrf": {csrf}}, 404},
	} {
		if resp, page := g.uiDo(t, "/-/ui/account/users/disable", alice, tt.form); resp.StatusCode != tt.status || !bobWorks() {
			t.Errorf("%s: %d, want %d, and bob untouched: %.200s", tt.name, resp.StatusCode, tt.status, page)
		}
	}
	if d, _ := g.srv.auth.Users.Disabled("alice"); d {
		t.Fatal("alice disabled herself")
	}

	resp, page := g.uiDo(t, "/-/ui/account/users/disable", alice, url.Values{"user": {"bob"}, "csrf": {csrf}})
	if resp.StatusCode != 200 || !strings.Contains(page, "User bob was disabled and 2 tokens revoked.") ||
		!strings.Contains(page, `<th scope="row">bob</th><td>disabled</td>`) || !strings.Contains(page, `aria-label="Enable bob"`) {
		t.Fatalf("disable bob: %d %.2000s", resp.StatusCode, page)
	}
	if bobWorks() {
		t.Error("disabled bob's token still reads")
	}
	if r, _ := g.do("GET", "/ms", basicAuth("bob", "bob-password"), nil); r.StatusCode != 401 {
		t.Errorf("disabled bob's password: %d", r.StatusCode)
	}
	if resp, _ := g.uiDo(t, "/-/ui/account", bobSession, nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/-/ui/signin" {
		t.Errorf("disabled bob's web session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := g.uiDo(t, "/-/ui/signin", "", url.Values{"username": {"bob"}, "password": {"bob-password"}}); resp.StatusCode != 401 {
		t.Errorf("disabled bob signs in: %d", resp.StatusCode)
	}

	resp, page = g.uiDo(t, "/-/ui/account/users/enable", alice, url.Values{"user": {"bob"}, "csrf": {csrf}})
	if resp.StatusCode != 200 || !strings.Contains(page, "User bob was enabled") {
		t.Fatalf("enable bob: %d %.300s", resp.StatusCode, page)
	}
	if r, _ := g.do("GET", "/ms", basicAuth("bob", "bob-password"), nil); r.StatusCode != 200 {
		t.Errorf("enabled bob's password: %d", r.StatusCode)
	}
	if bobWorks() {
		t.Error("a token revoked by disabling came back")
	}
}
