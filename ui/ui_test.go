package ui

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestPrefersHTML(t *testing.T) {
	for _, tc := range []struct {
		accept string
		want   bool
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", true}, // Chromium
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},                       // Firefox
		{"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", false},             // npm, pnpm
		{"application/json", false}, // yarn
		{"*/*", false},              // curl
		{"", false},
		{"application/json, text/html;q=0.5", false},
		{"application/json;q=0.5, text/html", true},
		{"text/html;q=0", false},
		{"TEXT/HTML", true},
		{"text/*", false},
	} {
		if got := prefersHTML([]byte(tc.accept)); got != tc.want {
			t.Errorf("prefersHTML(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
	npm := []byte("application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
	browser := []byte("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	if n := testing.AllocsPerRun(100, func() { prefersHTML(npm); prefersHTML(browser) }); n != 0 {
		t.Errorf("prefersHTML allocates %v times: it runs on every request", n)
	}
}

func BenchmarkWantsNPM(b *testing.B) {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/typescript")
	ctx.Request.Header.Set("Accept", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
	b.ReportAllocs()
	for b.Loop() {
		if Wants(&ctx) {
			b.Fatal("npm's request is the UI's")
		}
	}
}

func TestPublicURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://registry.npmjs.org":                   "https://registry.npmjs.org",
		"https://user:s3cret@npm.corp.example/repo/":   "https://npm.corp.example/repo/",
		"https://npm.corp.example/r?token=s3cret#frag": "https://npm.corp.example/r",
		"%zz": "",
	} {
		if got := publicURL(raw); got != want {
			t.Errorf("publicURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestSessionCookieAttributes: the session cookie is HttpOnly,
// SameSite=Strict, limited to the UI's path, and Secure under TLS.
func TestSessionCookieAttributes(t *testing.T) {
	for _, tls := range []bool{false, true} {
		u, err := New(Deps{TLS: func(*fasthttp.RequestCtx) bool { return tls }})
		if err != nil {
			t.Fatal(err)
		}
		var ctx fasthttp.RequestCtx
		u.setCookie(&ctx, "npmg_secret", 60)
		c := string(ctx.Response.Header.PeekCookie(SessionCookie))
		for _, want := range []string{"npmgate_session=npmg_secret", "HttpOnly", "SameSite=Strict", "path=/-/ui/", "max-age=60"} {
			if !strings.Contains(c, want) {
				t.Errorf("TLS %v: cookie %q lacks %s", tls, c, want)
			}
		}
		if strings.Contains(c, "secure") != tls {
			t.Errorf("TLS %v: cookie %q", tls, c)
		}
	}
}
