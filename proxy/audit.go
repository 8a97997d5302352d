package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
)

// Limits on audit request bodies: what arrives (npm gzips its audits),
// and what it inflates to. The inflated body is held whole (it is parsed
// and forwarded), so past largeBody it takes a large-body slot.
const (
	maxAuditBody     = 4 << 20
	maxAuditInflated = 16 << 20
	// auditCacheTTL: identical bulk audits (the same lockfile on many CI
	// agents) are answered from memory for this long. Advisories change
	// slowly; five minutes bounds how stale an answer can be.
	auditCacheTTL = 5 * time.Minute
	keysCacheTTL  = time.Hour
)

// auditTarget is where a feed's audit requests go.
type auditTarget struct {
	client *upstream.Client
	base   string
}

// serveRegistryAPI answers the registry services a feed forwards: audit,
// signing keys, attestations and search. It reports false for paths that
// are not such a service.
func (s *Server) serveRegistryAPI(ctx *fasthttp.RequestCtx, f *feed, api string, p *auth.Principal) bool {
	switch {
	case strings.HasPrefix(api, "/npm/v1/security/"):
	case api == "/npm/v1/keys", strings.HasPrefix(api, "/npm/v1/attestations/"), api == "/v1/search":
	default:
		return false
	}
	if err := f.access.Load().Check(p, auth.Read); err != nil {
		s.failAuth(ctx, err)
		return true
	}
	switch {
	case api == "/npm/v1/security/advisories/bulk" && ctx.IsPost(),
		api == "/npm/v1/security/audits/quick" && ctx.IsPost(),
		api == "/npm/v1/security/audits" && ctx.IsPost():
		s.audit(ctx, f, api)
	case api == "/npm/v1/keys" && ctx.IsGet():
		s.keys(ctx, f)
	case strings.HasPrefix(api, "/npm/v1/attestations/") && ctx.IsGet():
		s.attestations(ctx, f, api)
	case api == "/v1/search" && ctx.IsGet():
		s.search(ctx, f)
	default:
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("not found: %s /-%s", ctx.Method(), api))
	}
	return true
}

// private reports whether a name must never leave npmgate: it has local
// versions in the feed or is claimed (owned scopes and names).
func (f *feed) private(name string) bool {
	if f.claimed(name) {
		return true
	}
	d, err := f.readLocal(name)
	return err != nil || d != nil // on a read error, err on the side of not telling
}

// auditBody reads an audit request body, inflating gzip as a stream
// within a bound. held says a large-body slot is taken (the caller
// releases it); on !ok the answer is written and no slot is held.
func (s *Server) auditBody(ctx *fasthttp.RequestCtx) (body []byte, held, ok bool) {
	enc := ctx.Request.Header.Peek(fasthttp.HeaderContentEncoding)
	gz := false
	switch {
	case len(enc) == 0, bytes.EqualFold(enc, []byte("identity")):
	case bytes.EqualFold(enc, []byte("gzip")), bytes.EqualFold(enc, []byte("x-gzip")):
		gz = true
	default:
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, fmt.Sprintf("the audit request's Content-Encoding %q is not supported; send it uncompressed or gzip", enc))
		return nil, false, false
	}
	limit := int64(maxAuditInflated)
	if gz {
		limit = maxAuditBody
	}
	if ok, held = s.readBody(ctx, limit, "an audit"); !ok || !gz {
		return ctx.PostBody(), held, ok
	}
	raw := ctx.PostBody()
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "the audit request says gzip but is not")
		return nil, s.release(held), false
	}
	// Inflate once only to count: a bomb is refused without npmgate
	// ever holding what it inflates to. An audit within the limit is then
	// inflated into a buffer of its size.
	size, err := io.Copy(io.Discard, io.LimitReader(zr, maxAuditInflated+1))
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("the audit request's gzip body is broken: %v", err))
		return nil, s.release(held), false
	}
	if size > maxAuditInflated {
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("the audit request inflates past %d bytes", maxAuditInflated))
		return nil, s.release(held), false
	}
	if size > largeBody && !held {
		if !s.acquireLarge(ctx) {
			return nil, false, false
		}
		held = true
	}
	out := make([]byte, size)
	if err := zr.Reset(bytes.NewReader(raw)); err == nil {
		_, err = io.ReadFull(zr, out)
	}
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("the audit request's gzip body is broken: %v", err))
		return nil, s.release(held), false
	}
	return out, held, true
}

// release gives back a large-body slot if held; it reports false.
func (s *Server) release(held bool) bool {
	if held {
		s.largeBodies.Release(1)
	}
	return false
}

func (s *Server) audit(ctx *fasthttp.RequestCtx, f *feed, api string) {
	t := f.audit
	if t == nil {
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("npm audit is turned off for feed %q (feeds.%s.audit)", f.name, f.name))
		return
	}
	body, held, ok := s.auditBody(ctx)
	if held {
		defer s.largeBodies.Release(1)
	}
	if !ok {
		return
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "the audit request is not a JSON object")
		return
	}
	withheld := 0
	if api == "/npm/v1/security/advisories/bulk" {
		for name := range doc {
			if f.private(name) {
				delete(doc, name)
				withheld++
			}
		}
	} else {
		withheld = f.pruneTree(doc)
	}
	if withheld > 0 {
		s.metrics.auditWithheld.Add(float64(withheld))
		s.log.Debug("audit: names withheld from the audit service", "feed", f.name, "count", withheld)
	}
	out := npm.MustJSON(doc)
	sum := sha256.Sum256(out)
	key := "audit\x00" + f.name + "\x00" + api + "\x00" + hex.EncodeToString(sum[:])
	if it, ok := s.mem.Get(key); ok && time.Now().Before(it.Expires) {
		setResult(ctx, cacheHit)
		ctx.SetContentType("application/json")
		ctx.Response.SetBodyRaw(it.Body)
		return
	}
	res, err := t.client.Do(detached, "POST", t.base+"/-"+api, out, "application/json")
	if err != nil {
		// Never a made-up "no vulnerabilities": npm must see the failure.
		s.fail(ctx, fmt.Errorf("audit service: %w", err))
		return
	}
	if res.Status == 200 {
		s.mem.Set(key, &cache.Item{Body: res.Body, Expires: time.Now().Add(auditCacheTTL)}, 0)
	}
	passThrough(ctx, res)
}

// pruneTree removes private names from an audit request shaped like a
// v1 lockfile (quick and full audits): "requires" and the nested
// "dependencies" tree, and hides the root project's own name.
func (f *feed) pruneTree(doc map[string]json.RawMessage) int {
	withheld := 0
	if _, ok := doc["name"]; ok {
		doc["name"] = npm.MustJSON("project")
	}
	var walk func(raw json.RawMessage) json.RawMessage
	walk = func(raw json.RawMessage) json.RawMessage {
		var node map[string]json.RawMessage
		if json.Unmarshal(raw, &node) != nil {
			return raw
		}
		for _, field := range []string{"requires", "dependencies", "devDependencies", "optionalDependencies"} {
			var m map[string]json.RawMessage
			if json.Unmarshal(node[field], &m) != nil {
				continue
			}
			for name, v := range m {
				if f.private(name) {
					delete(m, name)
					withheld++
				} else if field == "dependencies" {
					m[name] = walk(v)
				}
			}
			node[field] = npm.MustJSON(m)
		}
		return npm.MustJSON(node)
	}
	pruned := walk(npm.MustJSON(doc))
	clear(doc)
	json.Unmarshal(pruned, &doc)
	return withheld
}

func passThrough(ctx *fasthttp.RequestCtx, res *upstream.Response) {
	ctx.SetStatusCode(res.Status)
	if res.Status >= 400 && !json.Valid(res.Body) {
		writeError(ctx, res.Status, fmt.Sprintf("the upstream service answered %d", res.Status))
		return
	}
	ct := res.ContentType
	if ct == "" {
		ct = "application/json"
	}
	ctx.SetContentType(ct)
	ctx.SetBody(res.Body)
}

// firstConnector is the connector signing keys, attestations and search
// are asked of.
func (f *feed) firstConnector() *connector {
	if len(f.connectors) == 0 {
		return nil
	}
	return f.connectors[0]
}

// keys forwards the connector's signing keys, so npm audit signatures
// verifies connector packages (whose dist.signatures npmgate keeps
// unchanged). Local packages carry no registry signature.
func (s *Server) keys(ctx *fasthttp.RequestCtx, f *feed) {
	c := f.firstConnector()
	if c == nil {
		writeError(ctx, fasthttp.StatusNotFound, "this feed has no connector and no signing keys")
		return
	}
	key := "keys\x00" + c.name
	if it, ok := s.mem.Get(key); ok && time.Now().Before(it.Expires) {
		ctx.SetContentType("application/json")
		ctx.Response.SetBodyRaw(it.Body)
		return
	}
	res, err := c.client.Do(detached, "GET", c.client.BaseURL()+"/-/npm/v1/keys", nil, "")
	if err != nil {
		s.fail(ctx, err)
		return
	}
	if res.Status == 200 && json.Valid(res.Body) {
		s.mem.Set(key, &cache.Item{Body: res.Body, Expires: time.Now().Add(keysCacheTTL)}, 0)
	}
	passThrough(ctx, res)
}

// attestations forwards a version's provenance attestations.
func (s *Server) attestations(ctx *fasthttp.RequestCtx, f *feed, api string) {
	spec := strings.TrimPrefix(api, "/npm/v1/attestations/")
	decoded, err := url.PathUnescape(spec)
	i := strings.LastIndexByte(decoded, '@')
	if err != nil || i <= 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "expected /-/npm/v1/attestations/{name}@{version}")
		return
	}
	name, version := decoded[:i], decoded[i+1:]
	if err := npm.ValidateName(name); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if npm.ValidateVersionOrTag(version) != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "bad version")
		return
	}
	c := f.firstConnector()
	if c == nil || f.private(name) {
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("no attestations for %s@%s", name, version))
		return
	}
	res, err := c.client.Do(detached, "GET", c.client.BaseURL()+"/-/npm/v1/attestations/"+strings.Replace(name, "/", "%2f", 1)+"@"+version, nil, "")
	if err != nil {
		s.fail(ctx, err)
		return
	}
	passThrough(ctx, res)
}

// searchObject is one local result in npm's search answer. Connector
// results are passed through as they came (only their name is read), so
// no field npm reads is lost in re-encoding.
type searchObject struct {
	Package struct {
		Name        string            `json:"name"`
		Scope       string            `json:"scope,omitempty"`
		Version     string            `json:"version"`
		Description string            `json:"description,omitempty"`
		Keywords    []string          `json:"keywords,omitempty"`
		Date        string            `json:"date,omitempty"`
		Links       map[string]string `json:"links"`
		Publisher   *searchUser       `json:"publisher,omitempty"`
		Maintainers []searchUser      `json:"maintainers"`
	} `json:"package"`
	Score       json.RawMessage `json:"score,omitempty"`
	SearchScore float64         `json:"searchScore"`
}

// searchUser is a person as the search API writes one (npm reads
// username).
type searchUser struct {
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
}

// search answers npm search: the feed's local packages first, then the
// connector's results without names the feed owns or filters. Paging runs
// over that combined list: the connector is asked only for the part of
// the page local results do not fill. Words of the query that name
// private packages are not sent upstream.
func (s *Server) search(ctx *fasthttp.RequestCtx, f *feed) {
	q := ctx.QueryArgs()
	text := strings.TrimSpace(string(q.Peek("text")))
	size, _ := strconv.Atoi(string(q.Peek("size")))
	if size <= 0 || size > 250 {
		size = 20
	}
	from, _ := strconv.Atoi(string(q.Peek("from")))
	from = max(from, 0)
	local, known := f.searchLocal(text)
	localNames := map[string]bool{}
	for _, o := range local {
		localNames[o.Package.Name] = true
	}
	var page []json.RawMessage
	for i := from; i < len(local) && len(page) < size; i++ {
		page = append(page, npm.MustJSON(local[i]))
	}
	total := len(local)
	// A query that names anything private (a local or owned name, a
	// private scope, a local user) is answered from local packages only:
	// forwarding the rest of it would still tell the connector what was
	// looked for around the private word.
	forward := text != "" && !f.searchTouchesPrivate(text, known)
	if c := f.firstConnector(); c != nil && forward {
		want := size - len(page)
		connFrom := max(from-len(local), 0)
		v := url.Values{"text": {strings.Join(strings.Fields(text), " ")}, "size": {strconv.Itoa(max(want, 1))}, "from": {strconv.Itoa(connFrom)}}
		res, err := c.client.Do(detached, "GET", c.client.BaseURL()+"/-/v1/search?"+v.Encode(), nil, "")
		if err == nil && res.Status == 200 {
			var answer struct {
				Objects []json.RawMessage `json:"objects"`
				Total   int               `json:"total"`
			}
			if json.Unmarshal(res.Body, &answer) == nil {
				pol := f.pol.Load().perConnector[0]
				total += max(answer.Total, 0)
				for _, raw := range answer.Objects {
					var o struct {
						Package struct{ Name string } `json:"package"`
					}
					json.Unmarshal(raw, &o)
					name := o.Package.Name
					if localNames[name] || npm.ValidateName(name) != nil || f.private(name) || !pol.Name(name).Allowed {
						total--
						continue
					}
					if want > 0 {
						page = append(page, raw)
						want--
					}
				}
			}
		} else if err != nil {
			s.log.Warn("search: connector failed; answering from local packages", "connector", c.name, "err", err)
		}
	}
	if page == nil {
		page = []json.RawMessage{}
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]any{"objects": page, "total": total, "time": time.Now().UTC().Format(time.RFC3339)})
}

// searchTerm is one term of a search text: a free word, or a qualifier
// (scope:, keywords:, author:, maintainer:, not:, is:, boost-exact:) and
// its comma-separated values.
type searchTerm struct {
	qualifier string // "" for a free word
	values    []string
}

var searchQualifiers = map[string]bool{"scope": true, "keywords": true, "author": true, "maintainer": true, "not": true, "is": true, "boost-exact": true}

func parseSearch(text string) []searchTerm {
	var terms []searchTerm
	for _, w := range strings.Fields(strings.ToLower(text)) {
		if q, v, ok := strings.Cut(w, ":"); ok && searchQualifiers[q] {
			terms = append(terms, searchTerm{qualifier: q, values: strings.FieldsFunc(v, func(r rune) bool { return r == ',' })})
			continue
		}
		terms = append(terms, searchTerm{values: []string{w}})
	}
	return terms
}

// searchKnown is what the local packages tell about privacy: their
// scopes and the people who maintain them.
type searchKnown struct {
	scopes, people map[string]bool
}

// searchTouchesPrivate reports whether any term of text, a qualifier's
// value as much as a free word, is a private name (f.private), a private
// scope (owned, or one local packages use; with or without "@"), or, for
// author: and maintainer:, a local user or maintainer.
func (f *feed) searchTouchesPrivate(text string, known searchKnown) bool {
	privateScope := func(s string) bool {
		s = strings.TrimPrefix(s, "@")
		return s != "" && (known.scopes[s] || f.ownedScope("@"+s+"/x"))
	}
	for _, t := range parseSearch(text) {
		for _, v := range t.values {
			v = strings.TrimPrefix(v, "-") // an excluded keyword names it too
			if npm.ValidateName(v) == nil && f.private(v) {
				return true
			}
			if scope, _, ok := strings.Cut(v, "/"); ok && strings.HasPrefix(scope, "@") && privateScope(scope) {
				return true
			}
			if privateScope(v) {
				return true
			}
			if t.qualifier == "author" || t.qualifier == "maintainer" {
				if known.people[v] {
					return true
				}
				if ok, err := f.s.auth.Users.Exists(v); ok || err != nil {
					return true // on a store error, err on the side of not telling
				}
			}
		}
	}
	return false
}

// searchLocal matches every term of text against the feed's local
// packages: free words against names, descriptions and keywords,
// scope:, keywords:, author: and maintainer: against what they name
// (other qualifiers are ignored). It also returns the scopes and people
// of all local packages, for searchTouchesPrivate.
func (f *feed) searchLocal(text string) ([]searchObject, searchKnown) {
	terms := parseSearch(text)
	known := searchKnown{scopes: map[string]bool{}, people: map[string]bool{}}
	var out []searchObject
	err := f.s.packages.Each(detached, f.name, func(_, name string, raw []byte) error {
		doc, err := decodeLocal(name, raw)
		if err != nil || doc.Packument == nil || len(doc.Packument.Versions) == 0 {
			return nil
		}
		lp := doc.Packument
		scope, _, _ := npm.SplitScope(lp.Name)
		if scope != "" {
			known.scopes[strings.ToLower(scope)] = true
		}
		people := map[string]bool{}
		for _, m := range lp.Maintainers {
			people[strings.ToLower(m.Name)] = true
			known.people[strings.ToLower(m.Name)] = true
		}
		latest := lp.DistTags["latest"]
		var v struct {
			Description string          `json:"description"`
			Keywords    []string        `json:"keywords"`
			Author      json.RawMessage `json:"author"`
		}
		json.Unmarshal(lp.Versions[latest], &v)
		if a := authorName(v.Author); a != "" {
			people[a] = true
			known.people[a] = true
		}
		keywords := map[string]bool{}
		for _, k := range v.Keywords {
			keywords[strings.ToLower(k)] = true
		}
		hay := strings.ToLower(lp.Name + " " + v.Description + " " + strings.Join(v.Keywords, " "))
		for _, t := range terms {
			if !t.matches(hay, strings.ToLower(scope), keywords, people) {
				return nil
			}
		}
		var o searchObject
		o.Package.Name, o.Package.Version, o.Package.Description, o.Package.Keywords = lp.Name, latest, v.Description, v.Keywords
		o.Package.Date = lp.Time["modified"]
		if scope, _, ok := npm.SplitScope(lp.Name); ok {
			o.Package.Scope = scope
		} else {
			o.Package.Scope = "unscoped"
		}
		o.Package.Links = map[string]string{}
		o.Package.Maintainers = []searchUser{}
		for _, m := range lp.Maintainers {
			o.Package.Maintainers = append(o.Package.Maintainers, searchUser{Username: m.Name, Email: m.Email})
		}
		if len(o.Package.Maintainers) > 0 {
			o.Package.Publisher = &o.Package.Maintainers[0]
		}
		o.Score = json.RawMessage(`{"final":1,"detail":{"quality":1,"popularity":1,"maintenance":1}}`)
		o.SearchScore = 1
		out = append(out, o)
		return nil
	})
	if err != nil {
		f.s.log.Warn("search: reading local packages failed", "feed", f.name, "err", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Package.Name < out[j].Package.Name })
	return out, known
}

// matches reports whether a local package matches a term: a free word is
// in its hay; scope:, keywords:, author: and maintainer: match when any
// of their values does.
func (t searchTerm) matches(hay, scope string, keywords, people map[string]bool) bool {
	anyValue := func(ok func(string) bool) bool {
		for _, v := range t.values {
			if ok(v) {
				return true
			}
		}
		return len(t.values) == 0
	}
	switch t.qualifier {
	case "":
		return strings.Contains(hay, t.values[0])
	case "scope":
		return anyValue(func(v string) bool { return strings.TrimPrefix(v, "@") == scope })
	case "keywords":
		return anyValue(func(v string) bool { return keywords[v] })
	case "author", "maintainer":
		return anyValue(func(v string) bool { return people[v] })
	}
	return true
}

// authorName is the lower-case name of a package.json author: an object
// with a name, or "Name <email> (url)".
func authorName(raw json.RawMessage) string {
	var a struct{ Name string }
	if json.Unmarshal(raw, &a) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		a.Name, _, _ = strings.Cut(s, " <")
	}
	return strings.ToLower(strings.TrimSpace(a.Name))
}
