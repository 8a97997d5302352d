package proxy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/feed"
)

// authenticate reads the request's credentials. No Authorization header is
// anonymous (nil, nil).
func (s *Server) authenticate(ctx *fasthttp.RequestCtx) (*auth.Principal, error) {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(h) == 0 {
		return nil, nil
	}
	// The address a token's CIDR ranges are checked against is the one
	// the miss limit charges: behind trusted proxies, the client's.
	return s.auth.Authenticate(string(h), s.missClient(ctx))
}

func clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// serveAPI answers the /-/ endpoints of a feed.
func (s *Server) serveAPI(ctx *fasthttp.RequestCtx, f *feed.Feed, api string, p *auth.Principal) {
	method := string(ctx.Method())
	switch {
	case api == "/whoami" && method == "GET":
		if p == nil {
			s.fail(ctx, authFailure(fmt.Errorf("%w: npm whoami needs credentials", auth.ErrUnauthenticated)))
			return
		}
		writeJSONValue(ctx, fasthttp.StatusOK, map[string]string{"username": p.Name})
	case strings.HasPrefix(api, "/user/org.couchdb.user:"):
		name, err := url.PathUnescape(strings.TrimPrefix(api, "/user/org.couchdb.user:"))
		if err != nil || strings.Contains(name, "/") {
			s.fail(ctx, refused(errBadRequest, "bad user name in path"))
			return
		}
		switch method {
		case "PUT":
			s.login(ctx, name)
		case "GET":
			if p == nil {
				s.fail(ctx, authFailure(fmt.Errorf("%w: looking up users needs credentials", auth.ErrUnauthenticated)))
				return
			}
			exists, err := s.auth.Users.Exists(name)
			if err != nil {
				s.fail(ctx, auth.Unavailable(err))
				return
			}
			if !exists {
				s.fail(ctx, refused(errNoSuch, fmt.Sprintf("no user %q", name)))
				return
			}
			writeJSONValue(ctx, fasthttp.StatusOK, map[string]string{"_id": "org.couchdb.user:" + name, "name": name})
		default:
			s.fail(ctx, refused(errMethod, "use npm login"))
		}
	case api == "/_view/starredByUser" && method == "GET":
		s.starredByUser(ctx, f, p)
	case strings.HasPrefix(api, "/user/token/") && method == "DELETE":
		s.logout(ctx, strings.TrimPrefix(api, "/user/token/"), p)
	case api == "/v1/login" && method == "POST":
		// No web login: any 4xx makes npm fall back to the username and
		// password prompt of the legacy flow.
		s.fail(ctx, refused(errNoSuch, "web login is not available on this registry; npm falls back to the username and password prompt (npm login --auth-type=legacy)"))
	case strings.HasPrefix(api, "/npm/v1/") && s.serveNPMv1(ctx, api, method, p):
	default:
		s.fail(ctx, refused(errNoSuch, fmt.Sprintf("not found: %s /-%s", method, api)))
	}
}

// serveNPMv1 answers npm token's and npm profile's endpoints; false
// for another.
func (s *Server) serveNPMv1(ctx *fasthttp.RequestCtx, api, method string, p *auth.Principal) bool {
	switch {
	case api == "/npm/v1/user" && (method == "GET" || method == "POST"):
		s.profile(ctx, p) // npm profile: two-factor enrolment (otp.go)
	case api == "/npm/v1/tokens" && method == "GET":
		s.listTokens(ctx, p)
	case api == "/npm/v1/tokens" && method == "POST":
		s.createToken(ctx, p)
	case strings.HasPrefix(api, "/npm/v1/tokens/token/") && method == "DELETE":
		s.revokeToken(ctx, strings.TrimPrefix(api, "/npm/v1/tokens/token/"), p)
	default:
		return false
	}
	return true
}

func writeJSONValue(ctx *fasthttp.RequestCtx, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b.Bytes())
}

// login is npm login / npm adduser, the CouchDB flow: a PUT of
// {name, password} answered with a token.
func (s *Server) login(ctx *fasthttp.RequestCtx, name string) {
	var body struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		s.fail(ctx, refused(errBadRequest, "login body is not JSON: "+err.Error()))
		return
	}
	if body.Name != name {
		s.fail(ctx, refused(errBadRequest, "the user name in the body differs from the one in the path"))
		return
	}
	token, err := s.auth.Login(name, body.Password, clientAddr(ctx))
	if err != nil {
		if errors.Is(err, auth.ErrBadCredentials) || errors.Is(err, auth.ErrThrottled) || errors.Is(err, auth.ErrUnavailable) {
			s.log.Info("login refused", "user", name, "reason", err)
			s.fail(ctx, authFailure(err))
			return
		}
		s.fail(ctx, refused(errBadRequest, err.Error()))
		return
	}
	s.log.Info("login", "user", name)
	writeJSONValue(ctx, fasthttp.StatusCreated, map[string]any{"ok": true, "id": "org.couchdb.user:" + name, "token": token})
}

// logout is npm logout: it revokes the token it was sent with.
func (s *Server) logout(ctx *fasthttp.RequestCtx, escaped string, p *auth.Principal) {
	secret, err := url.PathUnescape(escaped)
	if err != nil || p == nil {
		s.fail(ctx, authFailure(fmt.Errorf("%w: npm logout needs the token", auth.ErrUnauthenticated)))
		return
	}
	key := auth.KeyOf(secret)
	if p.TokenKey != key {
		s.fail(ctx, refused(auth.ErrForbidden, "a token can only log itself out"))
		return
	}
	if _, err := s.auth.Tokens.Revoke(key); errors.Is(err, auth.ErrNoToken) {
		s.fail(ctx, refused(errNoSuch, "no such token"))
		return
	} else if err != nil {
		s.fail(ctx, auth.Unavailable(err))
		return
	}
	s.log.Info("logout", "user", p.Name)
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]bool{"ok": true})
}

// tokenJSON is a token as npm token list shows it.
func tokenJSON(t *auth.Token, secret string) map[string]any {
	token := t.Prefix // npm adds the ellipsis, and matches revoke arguments against this prefix
	if secret != "" {
		token = secret
	}
	created := t.Created.Format(time.RFC3339)
	m := map[string]any{
		"token": token, "key": t.Key, "name": t.Name, "readonly": t.ReadOnly, "cidr_whitelist": nil,
		"created": created, "updated": created,
	}
	if len(t.CIDRs) > 0 {
		m["cidr_whitelist"] = t.CIDRs
	}
	if len(t.Packages) > 0 {
		m["packages"] = t.Packages
	}
	if !t.Expires.IsZero() {
		m["expires"] = t.Expires.Format(time.RFC3339)
	}
	if !t.LastUsed.IsZero() {
		m["lastUsed"] = t.LastUsed.Format(time.RFC3339)
	}
	if t.Automation {
		m["bypass_2fa"] = true
	}
	return m
}

func (s *Server) listTokens(ctx *fasthttp.RequestCtx, p *auth.Principal) {
	if p == nil {
		s.fail(ctx, authFailure(fmt.Errorf("%w: listing tokens needs credentials", auth.ErrUnauthenticated)))
		return
	}
	tokens, err := s.auth.Tokens.List(p.Name)
	if err != nil {
		s.fail(ctx, auth.Unavailable(err))
		return
	}
	objects := []map[string]any{}
	for _, t := range tokens {
		if t.Kind == "token" {
			objects = append(objects, tokenJSON(t, ""))
		}
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]any{"objects": objects, "total": len(objects), "urls": map[string]string{}})
}

// createToken is npm token create: the user's password is checked again.
func (s *Server) createToken(ctx *fasthttp.RequestCtx, p *auth.Principal) {
	if p == nil {
		s.fail(ctx, authFailure(fmt.Errorf("%w: creating tokens needs credentials", auth.ErrUnauthenticated)))
		return
	}
	if p.Kind == auth.KindAPIKey {
		s.fail(ctx, refused(auth.ErrForbidden, "an API key cannot create tokens"))
		return
	}
	var body tokenRequest
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		s.fail(ctx, refused(errBadRequest, "token request is not JSON"))
		return
	}
	n, err := body.newToken(s.auth, p)
	if err != nil {
		s.fail(ctx, refused(errBadRequest, err.Error()))
		return
	}
	if p.ReadOnly && !body.ReadOnly {
		s.fail(ctx, refused(auth.ErrForbidden, "a read-only token cannot create a token that publishes"))
		return
	}
	if err := s.auth.CheckPassword(p.Name, body.Password, clientAddr(ctx)); err != nil {
		s.fail(ctx, authFailure(err))
		return
	}
	secret, t, err := s.auth.Tokens.Create(n, time.Now())
	if err != nil {
		s.fail(ctx, auth.Unavailable(err))
		return
	}
	s.log.Info("token created", "user", p.Name, "key", t.Key[:12], "readonly", t.ReadOnly)
	writeJSONValue(ctx, fasthttp.StatusOK, tokenJSON(t, secret))
}

// tokenRequest is the body of npm token create (npm 11): expires is in
// days; scopes are "@acme" (or "acme"), limiting the token to
// "@acme/*"; bypass_2fa makes an automation token.
type tokenRequest struct {
	Password  string   `json:"password"`
	Name      string   `json:"name"`
	ReadOnly  bool     `json:"readonly"`
	Expires   int      `json:"expires"`
	Packages  []string `json:"packages"`
	Scopes    []string `json:"scopes"`
	CIDRs     []string `json:"cidr_whitelist"`
	Bypass2FA bool     `json:"bypass_2fa"`
}

// newToken is the token the request asks for, within the service's
// expiry rules; a credential limited to packages or feeds makes tokens
// limited to them as well.
func (b *tokenRequest) newToken(a *auth.Service, p *auth.Principal) (auth.NewToken, error) {
	pkgs := b.Packages
	for _, sc := range b.Scopes {
		pkgs = append(pkgs, "@"+strings.TrimPrefix(sc, "@")+"/*")
	}
	if len(p.Packages) > 0 {
		if len(pkgs) == 0 {
			pkgs = p.Packages
		}
		for _, pk := range pkgs {
			if !slices.Contains(p.Packages, pk) && p.MayWrite("publish", pk) != nil {
				return auth.NewToken{}, fmt.Errorf("this token is limited to packages %s and cannot make one for %s", strings.Join(p.Packages, ","), pk)
			}
		}
	}
	if err := auth.ValidateLimits(pkgs, b.CIDRs); err != nil {
		return auth.NewToken{}, err
	}
	ttl, err := a.TokenTTL(time.Duration(b.Expires)*24*time.Hour, b.ReadOnly)
	if err != nil {
		return auth.NewToken{}, err
	}
	name := cmp.Or(b.Name, "npm token create")
	return auth.NewToken{User: p.Name, Name: name, ReadOnly: b.ReadOnly, Feeds: p.Feeds, TTL: ttl,
		Packages: pkgs, CIDRs: b.CIDRs, Automation: b.Bypass2FA}, nil
}

func (s *Server) revokeToken(ctx *fasthttp.RequestCtx, key string, p *auth.Principal) {
	if p == nil {
		s.fail(ctx, authFailure(fmt.Errorf("%w: revoking tokens needs credentials", auth.ErrUnauthenticated)))
		return
	}
	if secret, err := url.PathUnescape(key); err == nil && auth.LooksLikeSecret(secret) {
		key = auth.KeyOf(secret) // npm token revoke also takes the token itself
	}
	mine, err := s.auth.Tokens.List(p.Name)
	if err != nil {
		s.fail(ctx, auth.Unavailable(err))
		return
	}
	owned := false
	for _, t := range mine {
		if t.Key == key || (len(key) >= auth.MinKeyPrefix && strings.HasPrefix(t.Key, key)) {
			owned = true
		}
	}
	if !owned {
		s.fail(ctx, refused(errNoSuch, "no such token of yours"))
		return
	}
	t, err := s.auth.Tokens.Revoke(key)
	if errors.Is(err, auth.ErrNoToken) {
		s.fail(ctx, refused(errNoSuch, err.Error()))
		return
	} else if err != nil {
		s.fail(ctx, auth.Unavailable(err))
		return
	}
	s.log.Info("token revoked", "user", p.Name, "key", t.Key[:12])
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
