// Package ui is npmgate's web UI: server-rendered pages (html/template,
// templates and stylesheet embedded) that show the feeds a viewer may
// read, search their packages and explain every version's verdict. It
// needs no JavaScript and loads nothing from another origin.
package ui

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/url"
	"sort"
	"strings"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
)

// Prefix is where the UI lives on every server.
const Prefix = "/-/ui/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css
var styleCSS []byte

// ErrNotFound is a UI page that does not exist, or that the viewer may
// not see: the two are not told apart. It is the feed's not-found, so
// the server answers it as it answers a package it does not have.
var ErrNotFound = feed.Refuse(feed.ErrNotFound, "no such page: no feed or package here that you may read")

// Deps are what the UI reads from: the server's feeds and memory tier.
type Deps struct {
	Feeds map[string]*feed.Feed
	// Default is the feed mounted at /.
	Default   string
	Mem       *cache.Memory
	Snapshots cache.Store
	// BaseURL is the public URL of a feed's mount for this request (no
	// trailing slash), as install snippets must name it.
	BaseURL func(ctx *fasthttp.RequestCtx, prefix string) (string, error)
	Log     *slog.Logger
	// Auth signs viewers in (nil: no sign-in); TLS says whether a
	// request came over TLS (session cookies are Secure then).
	Auth *auth.Service
	TLS  func(ctx *fasthttp.RequestCtx) bool
	// Admit takes a place under the miss limit for a page of a name the
	// feed does not know, as a packument request would (nil: none).
	Admit func(ctx *fasthttp.RequestCtx) (func(error), error)
}

// UI serves the pages.
type UI struct {
	d     Deps
	names []string // feeds, sorted
	tmpl  map[string]*template.Template
	index *cachedIndex
	// builds makes each package view once, however many ask at once.
	builds singleflight.Group
}

// New parses the templates.
func New(d Deps) (*UI, error) {
	u := &UI{d: d, tmpl: map[string]*template.Template{}, index: newCachedIndex(d.Snapshots)}
	for name := range d.Feeds {
		u.names = append(u.names, name)
	}
	sort.Strings(u.names)
	for _, page := range []string{"home", "search", "package", "error", "signin", "account"} {
		t, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		u.tmpl[page] = t
	}
	return u, nil
}

// Wants reports whether a request is the UI's: under /-/ui/, or a GET of
// the registry's root, a feed's root or a package from a client whose
// Accept header prefers HTML (a browser; npm, yarn and pnpm ask for JSON
// first, and curl for */*).
func Wants(ctx *fasthttp.RequestCtx) bool {
	// The raw request target, not ctx.Path(): parsing the URI would cost
	// every npm request, and the edge routes on the raw form anyway.
	uri := ctx.Request.Header.RequestURI()
	if bytes.HasPrefix(uri, []byte("/-/ui/")) || bytes.HasPrefix(uri, []byte("/-/ui?")) || string(uri) == "/-/ui" {
		return true
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		return false
	}
	if bytes.Contains(uri, []byte("/-/")) {
		return false // tarballs and the registry API stay npm's
	}
	return prefersHTML(ctx.Request.Header.Peek(fasthttp.HeaderAccept))
}

// prefersHTML reports whether text/html (or XHTML) has the highest
// quality of the media ranges in accept, ahead of any other named type.
// Wildcards do not count: */* is what tools send when they take anything.
// It runs on every request, so it allocates nothing, and an Accept that
// does not name HTML (npm's, yarn's, pnpm's) costs one scan.
func prefersHTML(accept []byte) bool {
	if !containsHTML(accept) {
		return false
	}
	best, html := -1.0, false
	for len(accept) > 0 {
		part := accept
		if i := bytes.IndexByte(accept, ','); i >= 0 {
			part, accept = accept[:i], accept[i+1:]
		} else {
			accept = nil
		}
		typ, params, _ := bytes.Cut(part, []byte(";"))
		typ = bytes.TrimSpace(typ)
		if len(typ) == 0 || typ[len(typ)-1] == '*' {
			continue
		}
		q := 1.0
		for len(params) > 0 {
			var p []byte
			p, params, _ = bytes.Cut(params, []byte(";"))
			if k, v, ok := bytes.Cut(bytes.TrimSpace(p), []byte("=")); ok && string(bytes.TrimSpace(k)) == "q" {
				q = parseQ(bytes.TrimSpace(v))
			}
		}
		isHTML := bytes.EqualFold(typ, []byte("text/html")) || bytes.EqualFold(typ, []byte("application/xhtml+xml"))
		if q > best {
			best, html = q, isHTML
		}
	}
	return html && best > 0
}

// containsHTML reports whether "html" is in s, in any case.
func containsHTML(s []byte) bool {
	if bytes.Contains(s, []byte("html")) {
		return true
	}
	if bytes.IndexAny(s, "HTML") < 0 {
		return false // the usual answer, found without folding every byte
	}
	for i := 0; i+4 <= len(s); i++ {
		if bytes.EqualFold(s[i:i+4], []byte("html")) {
			return true
		}
	}
	return false
}

// parseQ reads a quality value ("1", "0.8"); anything else is 0.
func parseQ(s []byte) float64 {
	var q float64
	frac := 1.0
	dot := false
	for _, c := range s {
		switch {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
			if dot {
				frac /= 10
				q += float64(c-'0') * frac
			} else {
				q = q*10 + float64(c-'0')
			}
		default:
			return 0
		}
	}
	return min(q, 1)
}

// SecurityHeaders are set on every UI response: no script at all, styles
// and images from this origin only, forms posting back here only, never
// framed, no referrer leaving.
func SecurityHeaders(h *fasthttp.ResponseHeader) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// Serve answers a UI request for viewer p (nil: anonymous). What it
// cannot answer comes back as an error for the server's one mapping of
// errors to statuses; Error then renders it.
func (u *UI) Serve(ctx *fasthttp.RequestCtx, rc context.Context, header *auth.Principal) error {
	SecurityHeaders(&ctx.Response.Header)
	s, err := u.viewer(ctx, header)
	if err != nil {
		return err
	}
	p := s.p
	path := string(ctx.Path())
	rest, ok := strings.CutPrefix(path, "/-/ui")
	if !ok {
		return u.serveBrowsed(ctx)
	}
	// Forms post to the sign-in, sign-out and account pages only; every
	// other page is read.
	forms := rest == "/signin" || rest == "/signout" || strings.HasPrefix(rest, "/account/")
	if ctx.IsPost() && !forms || !ctx.IsPost() && !ctx.IsGet() && !ctx.IsHead() {
		return ErrNotFound
	}
	ctx.SetUserValue(sessionKey, s)
	switch {
	case rest == "/signin":
		return u.serveSignin(ctx, s)
	case rest == "/signout":
		return u.serveSignout(ctx, s)
	case rest == "/account" || strings.HasPrefix(rest, "/account/"):
		return u.serveAccount(ctx, s, strings.TrimPrefix(rest, "/account"))
	case rest == "" || rest == "/":
		if rest == "" {
			redirect(ctx, Prefix, fasthttp.StatusFound)
			return nil
		}
		return u.serveHome(ctx, rc, p)
	case rest == "/static/style.css":
		ctx.Response.Header.Set("Cache-Control", "public, max-age=3600")
		ctx.SetContentType("text/css; charset=utf-8")
		ctx.SetBody(styleCSS)
		return nil
	case rest == "/search":
		return u.serveSearch(ctx, rc, p)
	case strings.HasPrefix(rest, "/package/"):
		feedName, name, ok := strings.Cut(strings.TrimPrefix(rest, "/package/"), "/")
		if !ok {
			return ErrNotFound
		}
		return u.servePackage(ctx, rc, p, feedName, name)
	}
	return ErrNotFound
}

// serveBrowsed answers a browser at a registry URL: to the home page from
// / and a feed's root, to a package's page from its packument's URL.
func (u *UI) serveBrowsed(ctx *fasthttp.RequestCtx) error {
	raw := string(ctx.Request.Header.RequestURI())
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	feedName, rest := u.d.Default, raw
	if tail, ok := strings.CutPrefix(raw, "/npm/"); ok {
		name, r, _ := strings.Cut(tail, "/")
		if _, known := u.d.Feeds[name]; known {
			feedName, rest = name, "/"+r
		}
	}
	// The pages live under /-/ui/, where the session cookie is sent:
	// a registry URL opened in a browser is sent there. (The API tells
	// a feed that exists from one that does not just as well.)
	if rest == "/" {
		redirect(ctx, Prefix, fasthttp.StatusFound)
		return nil
	}
	name, err := url.PathUnescape(strings.TrimPrefix(rest, "/"))
	if err != nil || npm.ValidateName(name) != nil {
		return ErrNotFound
	}
	redirect(ctx, packageURL(feedName, name), fasthttp.StatusFound)
	return nil
}

// readable is the feed named name when the viewer may read it; a feed
// they may not read does not exist for them.
func (u *UI) readable(name string, p *auth.Principal) (*feed.Feed, error) {
	f, ok := u.d.Feeds[name]
	if !ok || f.Access.Load().Check(p, auth.Read) != nil {
		return nil, ErrNotFound
	}
	return f, nil
}

// mount is the path a feed is served under ("" for the default feed).
func (u *UI) mount(name string) string {
	if name == u.d.Default {
		return ""
	}
	return "/npm/" + name
}

// sessionKey holds a request's session for the page it renders.
const sessionKey = "npmgate.ui.session"

// page is what every template gets.
type page struct {
	Title  string
	Viewer string
	// Session is set when the viewer signed in here (they can sign
	// out), with the CSRF token of the sign-out form.
	Session bool
	CSRF    string
	SignIn  bool // sign-in is offered
	Query   string
	Feed    string
	Feeds   []string // the feeds the viewer may read, for the search form
	Data    any
}

func (u *UI) newPage(p *auth.Principal, title string, data any) *page {
	pg := &page{Title: title, Data: data}
	if p != nil {
		pg.Viewer = p.Name
	}
	for _, n := range u.names {
		if u.d.Feeds[n].Access.Load().Check(p, auth.Read) == nil {
			pg.Feeds = append(pg.Feeds, n)
		}
	}
	return pg
}

// render writes a page with status 200.
func (u *UI) render(ctx *fasthttp.RequestCtx, name string, pg *page) error {
	ctx.SetStatusCode(fasthttp.StatusOK)
	return u.renderStatus(ctx, name, pg)
}

// renderStatus writes a page with the status already set.
func (u *UI) renderStatus(ctx *fasthttp.RequestCtx, name string, pg *page) error {
	if s, ok := ctx.UserValue(sessionKey).(session); ok && s.secret != "" && s.p != nil && pg.Viewer == s.p.Name {
		pg.Session, pg.CSRF = true, auth.CSRFToken(s.secret)
	}
	pg.SignIn = u.d.Auth != nil
	var b bytes.Buffer
	if err := u.tmpl[name].Execute(&b, pg); err != nil {
		return err
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(b.Bytes())
	return nil
}

// Error renders an error page with the status the server chose for err.
func (u *UI) Error(ctx *fasthttp.RequestCtx, p *auth.Principal, status int, msg string) {
	SecurityHeaders(&ctx.Response.Header)
	var b bytes.Buffer
	title := fasthttp.StatusMessage(status)
	if err := u.tmpl["error"].Execute(&b, u.newPage(p, title, map[string]any{"Status": status, "Message": msg})); err != nil {
		b.Reset()
		b.WriteString(template.HTMLEscapeString(msg))
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(b.Bytes())
}

// redirect sends the browser to a path of this server: a relative
// Location, never built from the request's Host.
func redirect(ctx *fasthttp.RequestCtx, path string, status int) {
	ctx.Response.Header.Set("Location", path)
	ctx.SetStatusCode(status)
}
