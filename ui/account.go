package ui

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/feed"
)

// SessionCookie holds a web UI session's secret.
const SessionCookie = "npmgate_session"

// sessionTTL is how long a session lasts: a working day.
const sessionTTL = 8 * time.Hour

// ciTokenTTL is how long a token made for CI from the UI lasts.
const ciTokenTTL = 90 * 24 * time.Hour

// session is the signed-in viewer of a request.
type session struct {
	p      *auth.Principal
	secret string // the cookie's; "" when the viewer used an Authorization header
}

// viewer is who makes the request: the Authorization header's principal
// (p) when there was one, else the session of the cookie, else nobody. A
// cookie whose session is over is dropped.
func (u *UI) viewer(ctx *fasthttp.RequestCtx, p *auth.Principal) (session, error) {
	if p != nil || u.d.Auth == nil {
		return session{p: p}, nil
	}
	secret := string(ctx.Request.Header.Cookie(SessionCookie))
	if secret == "" {
		return session{}, nil
	}
	sp, err := u.d.Auth.BySession(secret)
	if err != nil {
		if errors.Is(err, auth.ErrBadCredentials) {
			u.clearCookie(ctx)
			return session{}, nil
		}
		return session{}, err
	}
	return session{p: sp, secret: secret}, nil
}

func (u *UI) setCookie(ctx *fasthttp.RequestCtx, value string, maxAge int) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(SessionCookie)
	c.SetValue(value)
	c.SetPath(Prefix)
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetSecure(u.d.TLS != nil && u.d.TLS(ctx))
	c.SetMaxAge(maxAge)
	ctx.Response.Header.SetCookie(c)
}

func (u *UI) clearCookie(ctx *fasthttp.RequestCtx) { u.setCookie(ctx, "", -1) }

// sameOrigin refuses a form posted from another site: browsers say where
// a request comes from (Sec-Fetch-Site, Origin) and cookies are
// SameSite=Strict besides; the CSRF token is checked too.
func sameOrigin(ctx *fasthttp.RequestCtx) bool {
	if site := string(ctx.Request.Header.Peek("Sec-Fetch-Site")); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if origin := string(ctx.Request.Header.Peek("Origin")); origin != "" && origin != "null" {
		_, host, _ := strings.Cut(origin, "://")
		return host == string(ctx.Host())
	}
	return true
}

// errForm is a form refused for where it came from or its CSRF token.
var errForm = auth.ErrForbidden

func refuse(kind error, msg string) error { return feed.Refuse(kind, "%s", msg) }

func (u *UI) checkForm(ctx *fasthttp.RequestCtx, s session) error {
	if !sameOrigin(ctx) || !auth.CheckCSRF(s.secret, string(ctx.PostArgs().Peek("csrf"))) {
		return refuse(errForm, "this form is out of date or was sent from another site: reload the page and try again")
	}
	return nil
}

type signinData struct {
	Error string
	User  string
}

func (u *UI) serveSignin(ctx *fasthttp.RequestCtx, s session) error {
	if u.d.Auth == nil {
		return ErrNotFound
	}
	if !ctx.IsPost() {
		return u.render(ctx, "signin", u.newPage(s.p, "Sign in", &signinData{}))
	}
	if !sameOrigin(ctx) {
		return refuse(errForm, "sign-in forms are accepted from this site only")
	}
	name := strings.TrimSpace(string(ctx.PostArgs().Peek("username")))
	password := string(ctx.PostArgs().Peek("password"))
	client, _ := netip.AddrFromSlice(ctx.RemoteIP())
	secret, err := u.d.Auth.SignIn(name, password, client.Unmap(), sessionTTL)
	if err != nil {
		if errors.Is(err, auth.ErrBadCredentials) {
			ctx.SetStatusCode(fasthttp.StatusUnauthorized)
			return u.renderStatus(ctx, "signin", u.newPage(nil, "Sign in", &signinData{Error: "Wrong user name or password.", User: name}))
		}
		return err
	}
	u.setCookie(ctx, secret, int(sessionTTL/time.Second))
	redirect(ctx, Prefix+"account", fasthttp.StatusSeeOther)
	return nil
}

func (u *UI) serveSignout(ctx *fasthttp.RequestCtx, s session) error {
	if !ctx.IsPost() {
		return ErrNotFound // a link must not sign anyone out
	}
	if s.secret == "" {
		redirect(ctx, Prefix, fasthttp.StatusSeeOther)
		return nil
	}
	if err := u.checkForm(ctx, s); err != nil {
		return err
	}
	if err := u.d.Auth.SignOut(s.secret); err != nil {
		return err
	}
	u.clearCookie(ctx)
	redirect(ctx, Prefix, fasthttp.StatusSeeOther)
	return nil
}

type tokenRow struct {
	Key, Prefix, Kind, Name, Created, Expires string
	ReadOnly                                  bool
	Feeds                                     []string
	Current                                   bool
}

// maxUsersShown bounds the users the account page lists; the others are
// found by name.
const maxUsersShown = 100

type userRow struct {
	Name     string
	Disabled bool
	Self     bool // the viewer, who cannot disable themselves here
}

type accountData struct {
	CSRF      string
	Tokens    []tokenRow
	NewSecret string
	NewName   string
	Publish   []string
	Users     []userRow
	// UserFilter is the name part the users are filtered by; UsersTotal
	// how many match it, of which Users holds at most maxUsersShown.
	UserFilter string
	UsersTotal int
	Admin      bool // may manage users (auth.admins)
	Message    string
}

// serveAccount is the signed-in viewer's page: their tokens (revoke, or
// create a read-only one for CI, shown once), the feeds they may publish
// to, and for admins the users.
func (u *UI) serveAccount(ctx *fasthttp.RequestCtx, s session, action string) error {
	if s.secret == "" {
		if s.p != nil {
			return refuse(errForm, "the account page needs a web session: sign in at "+Prefix+"signin")
		}
		redirect(ctx, Prefix+"signin", fasthttp.StatusSeeOther)
		return nil
	}
	d := &accountData{CSRF: auth.CSRFToken(s.secret)}
	switch {
	case action == "" && !ctx.IsPost():
	case action == "/tokens" && ctx.IsPost():
		if err := u.checkForm(ctx, s); err != nil {
			return err
		}
		name := strings.TrimSpace(string(ctx.PostArgs().Peek("name")))
		if name == "" {
			name = "CI (read-only)"
		}
		secret, _, err := u.d.Auth.Tokens.Create(auth.NewToken{User: s.p.Name, Name: name, ReadOnly: true, TTL: ciTokenTTL}, time.Now())
		if err != nil {
			return auth.Unavailable(err)
		}
		d.NewSecret, d.NewName = secret, name
	case action == "/tokens/revoke" && ctx.IsPost():
		if err := u.checkForm(ctx, s); err != nil {
			return err
		}
		if err := u.revokeOwn(s, string(ctx.PostArgs().Peek("key"))); err != nil {
			return err
		}
		d.Message = "The token was revoked."
	case (action == "/users/disable" || action == "/users/enable") && ctx.IsPost():
		if err := u.checkForm(ctx, s); err != nil {
			return err
		}
		msg, err := u.setUserDisabled(s, string(ctx.PostArgs().Peek("user")), action == "/users/disable")
		if err != nil {
			return err
		}
		d.Message = msg
	default:
		return ErrNotFound
	}
	d.UserFilter = strings.TrimSpace(string(ctx.QueryArgs().Peek("user")))
	if err := u.fillAccount(d, s); err != nil {
		return err
	}
	return u.render(ctx, "account", u.newPage(s.p, "Your account", d))
}

// setUserDisabled disables or enables a user, for an admin only; an admin
// does not disable themselves (they would lose the page doing it).
func (u *UI) setUserDisabled(s session, name string, disable bool) (string, error) {
	switch {
	case !u.d.Auth.IsAdmin(s.p):
		return "", refuse(auth.ErrForbidden, "only the admins named in auth.admins manage users")
	case disable && name == s.p.Name:
		return "", refuse(auth.ErrForbidden, "you cannot disable yourself; ask another admin, or use npmgate user disable on the server")
	}
	noUser := func(err error) error {
		if errors.Is(err, auth.ErrNoUser) {
			return refuse(feed.ErrNotFound, fmt.Sprintf("there is no user %q", name))
		}
		return err
	}
	if !disable {
		if err := u.d.Auth.EnableUser(name); err != nil {
			return "", noUser(err)
		}
		u.logAdmin("user enabled", name, s, 0)
		return "User " + name + " was enabled: their password works again (their revoked tokens stay revoked).", nil
	}
	n, err := u.d.Auth.DisableUser(name)
	if err != nil {
		return "", noUser(err)
	}
	u.logAdmin("user disabled", name, s, n)
	return fmt.Sprintf("User %s was disabled and %s revoked.", name, tokensCount(n)), nil
}

// logAdmin records who changed a user: the log is the audit trail.
func (u *UI) logAdmin(msg, user string, s session, revoked int) {
	if u.d.Log != nil {
		u.d.Log.Info(msg, "user", user, "by", s.p.Name, "tokens_revoked", revoked)
	}
}

// tokensCount is "1 token", "2 tokens".
func tokensCount(n int) string {
	if n == 1 {
		return "1 token"
	}
	return fmt.Sprintf("%d tokens", n)
}

// revokeOwn revokes one of the viewer's own tokens, never another's.
func (u *UI) revokeOwn(s session, key string) error {
	tokens, err := u.d.Auth.Tokens.List(s.p.Name)
	if err != nil {
		return auth.Unavailable(err)
	}
	for _, tk := range tokens {
		if tk.Key == key && key != "" {
			_, err := u.d.Auth.Tokens.Revoke(tk.Key)
			return auth.Unavailable(err)
		}
	}
	return ErrNotFound
}

func (u *UI) fillAccount(d *accountData, s session) error {
	tokens, err := u.d.Auth.Tokens.List(s.p.Name)
	if err != nil {
		return auth.Unavailable(err)
	}
	now := time.Now()
	for _, tk := range tokens {
		if tk.Expired(now) {
			continue // over: nothing to revoke (the store deletes it later)
		}
		r := tokenRow{Key: tk.Key, Prefix: tk.Prefix, Kind: tk.Kind, Name: tk.Name, ReadOnly: tk.ReadOnly, Feeds: tk.Feeds,
			Created: tk.Created.UTC().Format("2006-01-02 15:04 UTC"), Current: tk.Key == s.p.TokenKey}
		if !tk.Expires.IsZero() {
			r.Expires = tk.Expires.UTC().Format("2006-01-02 15:04 UTC")
		}
		d.Tokens = append(d.Tokens, r)
	}
	for _, name := range u.names {
		acc := u.d.Feeds[name].Access.Load()
		if acc.Check(s.p, auth.Publish) == nil {
			d.Publish = append(d.Publish, name)
		}
	}
	if d.Admin = u.d.Auth.IsAdmin(s.p); d.Admin {
		users, err := u.d.Auth.Users.List()
		if err != nil {
			return auth.Unavailable(err)
		}
		filter := strings.ToLower(d.UserFilter)
		for _, us := range users {
			if !strings.Contains(strings.ToLower(us.Name), filter) {
				continue
			}
			if d.UsersTotal++; d.UsersTotal <= maxUsersShown {
				d.Users = append(d.Users, userRow{Name: us.Name, Disabled: us.Disabled, Self: us.Name == s.p.Name})
			}
		}
	}
	return nil
}
