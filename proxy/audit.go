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
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/osv"
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

// serveRegistryAPI answers the registry services a feed forwards: audit,
// signing keys, attestations and search. It reports false for paths that
// are not such a service.
func (s *Server) serveRegistryAPI(ctx *fasthttp.RequestCtx, f *feed.Feed, api string, p *auth.Principal) bool {
	switch {
	case strings.HasPrefix(api, "/npm/v1/security/"):
	case api == "/npm/v1/keys", strings.HasPrefix(api, "/npm/v1/attestations/"), api == "/v1/search":
	default:
		return false
	}
	if err := f.Access.Load().Check(p, auth.Read); err != nil {
		s.fail(ctx, authFailure(err))
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
		s.fail(ctx, refused(errNoSuch, fmt.Sprintf("not found: %s /-%s", ctx.Method(), api)))
	}
	return true
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
		s.fail(ctx, refused(errMediaType, fmt.Sprintf("the audit request's Content-Encoding %q is not supported; send it uncompressed or gzip", enc)))
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
		s.fail(ctx, refused(errBadRequest, "the audit request says gzip but is not"))
		return nil, s.release(held), false
	}
	// Inflate once only to count: a bomb is refused without npmgate
	// ever holding what it inflates to. An audit within the limit is then
	// inflated into a buffer of its size.
	size, err := io.Copy(io.Discard, io.LimitReader(zr, maxAuditInflated+1))
	if err != nil {
		s.fail(ctx, refused(errBadRequest, fmt.Sprintf("the audit request's gzip body is broken: %v", err)))
		return nil, s.release(held), false
	}
	if size > maxAuditInflated {
		s.fail(ctx, refused(errBodyTooLarge, fmt.Sprintf("the audit request inflates past %d bytes", maxAuditInflated)))
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
		s.fail(ctx, refused(errBadRequest, fmt.Sprintf("the audit request's gzip body is broken: %v", err)))
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

func (s *Server) audit(ctx *fasthttp.RequestCtx, f *feed.Feed, api string) {
	t := f.Audit
	if t == nil {
		s.fail(ctx, refused(errNoSuch, fmt.Sprintf("npm audit is turned off for feed %q (feeds.%s.audit)", f.Name, f.Name)))
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
		s.fail(ctx, refused(errBadRequest, "the audit request is not a JSON object"))
		return
	}
	withheld := 0
	if api == "/npm/v1/security/advisories/bulk" {
		for name := range doc {
			if f.Private(s.rctx(ctx), name) {
				delete(doc, name)
				withheld++
			}
		}
	} else {
		withheld = f.PruneTree(s.rctx(ctx), doc)
	}
	if withheld > 0 {
		s.metrics.auditWithheld.Add(float64(withheld))
		s.log.Debug("audit: names withheld from the audit service", "feed", f.Name, "count", withheld)
	}
	out := npm.MustJSON(doc)
	if t.Local {
		s.auditLocal(ctx, f, t, api, out)
		return
	}
	sum := sha256.Sum256(out)
	key := "audit\x00" + f.Name + "\x00" + api + "\x00" + hex.EncodeToString(sum[:])
	if it, ok := s.mem.Get(key); ok && time.Now().Before(it.Expires) {
		setResult(ctx, feed.CacheHit)
		ctx.SetContentType("application/json")
		ctx.Response.SetBodyRaw(it.Body)
		return
	}
	res, err := t.Client.Do(s.rctx(ctx), "POST", t.Base+"/-"+api, out, "application/json")
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

// auditLocal answers an audit from the OSV database (audit: local), in
// the shape of the endpoint asked, sending nothing anywhere; with
// local+connector the connector's answer to the same (pruned) request is
// merged in. A connector that fails or answers something else leaves
// the local answer alone, which is a real one, and the log says so.
func (s *Server) auditLocal(ctx *fasthttp.RequestCtx, f *feed.Feed, t *feed.AuditTarget, api string, body []byte) {
	db := s.osvDB()
	if db == nil {
		s.fail(ctx, refused(errNotReady, "the advisory database (osv.source) is not loaded yet; see /readyz"))
		return
	}
	bulk := api == "/npm/v1/security/advisories/bulk"
	answer, merge := db.V1Audit, osv.MergeV1
	if bulk {
		answer, merge = db.BulkAudit, osv.MergeBulk
	}
	local, err := answer(body)
	if err != nil {
		s.fail(ctx, refused(errBadRequest, err.Error()))
		return
	}
	if t.Client != nil {
		local = s.mergeConnectorAudit(ctx, f, t, api, body, local, merge)
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(local)
}

// mergeConnectorAudit merges the connector's answer into local.
func (s *Server) mergeConnectorAudit(ctx *fasthttp.RequestCtx, f *feed.Feed, t *feed.AuditTarget, api string, body, local []byte, merge func(local, upstream []byte) ([]byte, error)) []byte {
	res, err := t.Client.Do(s.rctx(ctx), "POST", t.Base+"/-"+api, body, "application/json")
	if err == nil && res.Status != 200 {
		err = fmt.Errorf("status %d", res.Status)
	}
	var merged []byte
	if err == nil {
		merged, err = merge(local, res.Body)
	}
	if err != nil {
		s.log.Warn("audit: the connector's answer is left out; answering from the advisory database alone", "feed", f.Name, "err", err)
		return local
	}
	return merged
}

func passThrough(ctx *fasthttp.RequestCtx, res *upstream.Response) {
	ctx.SetStatusCode(res.Status)
	if res.Status >= 400 && !json.Valid(res.Body) {
		respond(ctx, &upstreamStatus{status: res.Status, msg: fmt.Sprintf("the upstream service answered %d", res.Status)})
		return
	}
	ct := res.ContentType
	if ct == "" {
		ct = "application/json"
	}
	ctx.SetContentType(ct)
	ctx.SetBody(res.Body)
}

// keys answers /-/npm/v1/keys: every connector's signing keys, so npm
// audit signatures verifies each connector's packages (whose
// dist.signatures npmgate keeps unchanged), with npmgate's own key, which
// signs the local packages. npm asks the registry it installed from, the
// feed, so one answer must hold them all. A feed of one connector and no
// key of its own passes the connector's answer through; a feed without
// connectors answers its own key alone.
func (s *Server) keys(ctx *fasthttp.RequestCtx, f *feed.Feed) {
	var own []json.RawMessage
	if sg := f.Deps.Signer; sg != nil {
		own = append(own, npm.MustJSON(sg.PublicKey()))
	}
	if len(f.Connectors) == 0 && own == nil {
		s.fail(ctx, refused(errNoSuch, "this feed has no connector and no signing keys"))
		return
	}
	var connectorKeys []json.RawMessage
	for _, c := range f.Connectors {
		res, err := s.connectorKeys(ctx, c)
		if err != nil {
			s.fail(ctx, err)
			return
		}
		if own == nil && len(f.Connectors) == 1 {
			passThrough(ctx, res)
			return
		}
		keys, err := keysOf(c, res)
		if err != nil {
			s.fail(ctx, err)
			return
		}
		connectorKeys = append(connectorKeys, keys...)
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string][]json.RawMessage{"keys": mergeKeys(connectorKeys, own)})
}

// connectorKeys is a connector's keys answer, kept an hour when good.
func (s *Server) connectorKeys(ctx *fasthttp.RequestCtx, c *feed.Connector) (*upstream.Response, error) {
	key := "keys\x00" + c.Name
	if it, ok := s.mem.Get(key); ok && time.Now().Before(it.Expires) {
		return &upstream.Response{Status: 200, ContentType: "application/json", Body: it.Body}, nil
	}
	res, err := c.Client.Do(s.rctx(ctx), "GET", c.Client.BaseURL()+"/-/npm/v1/keys", nil, "")
	if err != nil {
		return nil, err
	}
	if res.Status == 200 && json.Valid(res.Body) {
		s.mem.Set(key, &cache.Item{Body: res.Body, Expires: time.Now().Add(keysCacheTTL)}, 0)
	}
	return res, nil
}

// keysOf reads a connector's keys answer to merge: none when it has no
// keys endpoint (404), its entries as sent when 200, else an error, as
// npm could verify none of its packages with an answer missing its keys.
func keysOf(c *feed.Connector, res *upstream.Response) ([]json.RawMessage, error) {
	switch res.Status {
	case fasthttp.StatusOK:
	case fasthttp.StatusNotFound:
		return nil, nil
	default:
		return nil, &upstreamStatus{status: fasthttp.StatusBadGateway, msg: fmt.Sprintf("connector %q answered %d for its signing keys", c.Name, res.Status)}
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(res.Body, &doc); err != nil {
		return nil, &upstreamStatus{status: fasthttp.StatusBadGateway, msg: fmt.Sprintf("connector %q answered a keys document that is not {\"keys\": [...]}", c.Name)}
	}
	return doc.Keys, nil
}

// mergeKeys is the connectors' keys in the feed's order, then ours, each
// key id once (the first entry wins: two connectors mirroring npm send
// npm's keys twice).
func mergeKeys(upstreamKeys, own []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(upstreamKeys)+len(own))
	seen := map[string]bool{}
	for _, k := range slices.Concat(upstreamKeys, own) {
		var id struct {
			KeyID string `json:"keyid"`
		}
		if json.Unmarshal(k, &id) == nil && id.KeyID != "" {
			if seen[id.KeyID] {
				continue
			}
			seen[id.KeyID] = true
		}
		out = append(out, k)
	}
	return out
}

// attestations forwards a version's provenance attestations.
func (s *Server) attestations(ctx *fasthttp.RequestCtx, f *feed.Feed, api string) {
	spec := strings.TrimPrefix(api, "/npm/v1/attestations/")
	decoded, err := url.PathUnescape(spec)
	i := strings.LastIndexByte(decoded, '@')
	if err != nil || i <= 0 {
		s.fail(ctx, refused(errBadRequest, "expected /-/npm/v1/attestations/{name}@{version}"))
		return
	}
	name, version := decoded[:i], decoded[i+1:]
	if err := npm.ValidateName(name); err != nil {
		s.fail(ctx, refused(errBadRequest, err.Error()))
		return
	}
	if npm.ValidateVersionOrTag(version) != nil {
		s.fail(ctx, refused(errBadRequest, "bad version"))
		return
	}
	none := refused(errNoSuch, fmt.Sprintf("no attestations for %s@%s", name, version))
	if f.Private(s.rctx(ctx), name) {
		s.fail(ctx, none)
		return
	}
	// The connectors in the feed's order, as a package's versions are
	// looked for: the first that has attestations for the version answers.
	pol := f.Rules.Load()
	for i, c := range f.Connectors {
		if !pol.PerConnector[i].Name(name).Allowed {
			continue
		}
		res, err := c.Client.Do(s.rctx(ctx), "GET", c.Client.BaseURL()+"/-/npm/v1/attestations/"+strings.Replace(name, "/", "%2f", 1)+"@"+version, nil, "")
		if err != nil {
			s.fail(ctx, err)
			return
		}
		if res.Status != fasthttp.StatusNotFound {
			passThrough(ctx, res)
			return
		}
	}
	s.fail(ctx, none)
}
