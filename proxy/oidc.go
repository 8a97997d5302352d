package proxy

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/trustpub"
)

// Trusted publishing: npm (11.5.1 and later) in GitHub Actions or GitLab CI
// with no token asks its CI for an ID token with the audience
// "npm:HOST" and POSTs it, as a Bearer credential and with no body, to
// /-/npm/v1/oidc/token/exchange/package/{name} at the root of the
// registry's host (npm resolves the path against the registry URL, so a
// registry at /npm/{feed}/ still sends it to the root; yarn sends it
// below the registry URL, which names the feed). The answer's "token" is
// what the publish then uses; when the exchange fails npm logs the
// answer's "message" (with --loglevel verbose) and publishes without it.

// oidcExchangePath is where the exchange arrives, before the package name.
const oidcExchangePath = "/-/npm/v1/oidc/token/exchange/package/"

// oidcTokenTTL is how long an exchanged token lives: long enough for one
// npm publish, short enough that a leaked one is soon worthless.
const oidcTokenTTL = 5 * time.Minute

// exchangeError is a refused exchange. npm prints the "message" member of
// the answer, not "error": respond writes both for it.
type exchangeError struct{ err error }

func (e *exchangeError) Error() string { return e.err.Error() }
func (e *exchangeError) Unwrap() error { return e.err }

// exchangeOutcome labels npmgate_oidc_exchanges_total: a fixed set.
func exchangeOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, trustpub.ErrReplayed):
		return "replayed"
	case errors.Is(err, trustpub.ErrInvalidToken):
		return "invalid_token"
	case errors.Is(err, trustpub.ErrUntrusted):
		return "untrusted"
	case errors.Is(err, trustpub.ErrUnavailable), errors.Is(err, auth.ErrUnavailable):
		return "unavailable"
	case statusOf(err) < 500:
		return "bad_request"
	}
	return "error"
}

// serveOIDCExchange answers an exchange, logs it (the identity the ID
// token proved, never the token or the one given back) and counts it.
func (s *Server) serveOIDCExchange(ctx *fasthttp.RequestCtx, asked, escaped string) string {
	x := &exchange{asked: asked}
	err := s.exchange(ctx, x, escaped)
	outcome := exchangeOutcome(err)
	s.metrics.oidcExchanges.WithLabelValues(outcome).Inc()
	attrs := []any{"outcome", outcome, "package", x.name, "feed", cmpOr(x.feed, asked)}
	if x.id != nil {
		attrs = append(attrs, "issuer", x.id.Issuer, "subject", x.id.Subject, "repository", x.id.Repository,
			"workflow", x.id.Workflow, "environment", x.id.Environment, "ref", x.id.Ref)
	}
	if err != nil {
		s.log.Warn("trusted publishing exchange refused", append(attrs, "reason", err.Error())...)
		s.fail(ctx, &exchangeError{err})
		return cmpOr(x.feed, asked)
	}
	s.log.Info("trusted publishing exchange", append(attrs, "user", x.user, "expires", x.expires)...)
	writeJSONValue(ctx, fasthttp.StatusCreated, map[string]any{"token": x.token, "expires": x.expires})
	return x.feed
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// exchange is what an exchange learnt, for its log line.
type exchange struct {
	asked, name, feed, user string
	id                      *trustpub.Identity
	token                   string
	expires                 time.Time
}

// exchange verifies the ID token, finds the trusted publisher its claims
// match for the package, and makes a token that can publish that package
// once, on that publisher's feed, for a few minutes.
func (s *Server) exchange(ctx *fasthttp.RequestCtx, x *exchange, escaped string) error {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		return refused(errMethod, "the token exchange is a POST")
	}
	name, err := url.PathUnescape(escaped)
	if err != nil || npm.ValidateName(name) != nil {
		return refused(errBadRequest, "the token exchange names a package: POST "+oidcExchangePath+"{name}, a scoped name as @scope%2fname")
	}
	x.name = name
	pubs := *s.publishers.Load()
	if len(pubs) == 0 {
		return refused(errNoSuch, "trusted publishing is not configured on this registry (publishing.trusted); publish with a token")
	}
	raw, ok := strings.CutPrefix(string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)), "Bearer ")
	if !ok || raw == "" {
		return feed.Refuse(auth.ErrUnauthenticated, "the token exchange needs the CI job's OIDC ID token as a Bearer credential")
	}
	audiences, err := s.audiences(ctx)
	if err != nil {
		return err
	}
	x.id, err = s.oidc.Verify(s.rctx(ctx), raw, issuersOf(pubs), audiences)
	if err != nil {
		return err
	}
	pub, err := trustpub.Match(pubs, x.id, name, x.asked, s.def.Name)
	if err != nil {
		return err
	}
	if err := s.oidc.Use(s.rctx(ctx), x.id); err != nil {
		return err
	}
	x.feed, x.user = cmpOr(pub.Feed, s.def.Name), pub.Principal()
	secret, tk, err := s.auth.Tokens.Create(auth.NewToken{
		User: x.user, Name: "trusted publishing " + name, Feeds: []string{x.feed}, TTL: oidcTokenTTL,
		Packages: []string{name}, MaxUses: 1, Automation: true,
	}, time.Now())
	if err != nil {
		return auth.Unavailable(err)
	}
	x.token, x.expires = secret, tk.Expires
	return nil
}

// audiences are the ID token audiences that name this registry:
// publishing.audience, or "npm:HOST" for the public host the request came
// to, with and without its port (npm asks for the host name alone, yarn
// with the port).
func (s *Server) audiences(ctx *fasthttp.RequestCtx) ([]string, error) {
	if a := s.cfg.Publishing.Audience; len(a) > 0 {
		return a, nil
	}
	base, err := s.baseURL(ctx, "")
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, refused(errBadRequest, "bad Host header")
	}
	out := []string{"npm:" + u.Hostname()}
	if u.Host != u.Hostname() {
		out = append(out, "npm:"+u.Host)
	}
	return out, nil
}

// issuersOf are the issuers some publisher trusts: no other is ever asked
// for keys.
func issuersOf(pubs []trustpub.Publisher) []string {
	var out []string
	for _, p := range pubs {
		if !slices.Contains(out, p.Issuer) {
			out = append(out, p.Issuer)
		}
	}
	return out
}
