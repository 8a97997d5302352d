package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// lockedGate serves feed "main" to authenticated users only and feed
// "team" to the group "devs"; alice is in devs, bob is not.
func lockedGate(t *testing.T) (*gate, *syncBuffer) {
	t.Helper()
	up := fakeupstream.Start(t, fakeupstream.Dir())
	logs := &syncBuffer{}
	g := startGate(t, up, func(c *config.Config) {
		c.Feeds["main"].Access = config.Access{Read: []string{"$authenticated"}, Publish: []string{"$authenticated"}}
		c.Feeds["team"] = &config.Feed{Connectors: []string{"up"}, Access: config.Access{Read: []string{"devs"}, Publish: []string{"devs"}}}
		c.Auth.Groups = map[string][]string{"devs": {"alice"}}
		on := true
		c.Log.Access = &on
	})
	g.srv.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, u := range []string{"alice", "bob"} {
		if err := g.srv.auth.Users.Set(u, u+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	return g, logs
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// do sends any request and returns status, headers and body.
func (g *gate) do(method, path, authz string, body []byte) (*http.Response, []byte) {
	g.t.Helper()
	req, _ := http.NewRequest(method, g.url+path, bytes.NewReader(body))
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestReadRights(t *testing.T) {
	g, _ := lockedGate(t)
	g.get("/ms") // nothing: just to have the upstream warm for tarballs below
	aliceKey, _, _ := g.srv.auth.Tokens.Create(auth.NewToken{User: "alice", APIKey: true, ReadOnly: true}, time.Now())
	mainOnly, _, _ := g.srv.auth.Tokens.Create(auth.NewToken{User: "alice", Feeds: []string{"main"}}, time.Now())
	tests := []struct {
		name, path, authz string
		status            int
	}{
		{"anonymous packument", "/ms", "", 401},
		{"anonymous tarball", "/ms/-/ms-2.1.3.tgz", "", 401},
		{"anonymous on the feed path", "/npm/main/ms", "", 401},
		{"bad password", "/ms", basicAuth("alice", "nope"), 401},
		{"unknown token", "/ms", "Bearer npmg_unknown", 401},
		{"password", "/ms", basicAuth("alice", "alice-password"), 200},
		{"api key as _auth", "/ms/-/ms-2.1.3.tgz", basicAuth("api", aliceKey), 200},
		{"api key as bearer", "/ms", "Bearer " + aliceKey, 200},
		{"group feed, member", "/npm/team/ms", basicAuth("alice", "alice-password"), 200},
		{"group feed, not a member", "/npm/team/ms", basicAuth("bob", "bob-password"), 403},
		{"group feed tarball, not a member", "/npm/team/ms/-/ms-2.1.3.tgz", basicAuth("bob", "bob-password"), 403},
		{"token for another feed", "/npm/team/ms", "Bearer " + mainOnly, 403},
		{"token for its feed", "/ms", "Bearer " + mainOnly, 200},
		{"ping needs nothing", "/-/ping", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := g.do("GET", tt.path, tt.authz, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.status >= 400 && !json.Valid(body) {
				t.Errorf("error body is not JSON: %s", body)
			}
		})
	}
}

func TestLoginWhoamiTokensLogout(t *testing.T) {
	g, logs := lockedGate(t)
	login := func(name, pw string) (*http.Response, string) {
		body, _ := json.Marshal(map[string]string{"_id": "org.couchdb.user:" + name, "name": name, "password": pw, "type": "user"})
		resp, b := g.do("PUT", "/-/user/org.couchdb.user:"+name, "", body)
		var r struct{ Token string }
		json.Unmarshal(b, &r)
		return resp, r.Token
	}
	if resp, tok := login("alice", "wrong"); resp.StatusCode != 401 || tok != "" {
		t.Fatalf("bad login: %d", resp.StatusCode)
	}
	if resp, _ := login("nobody", "whatever1"); resp.StatusCode != 401 {
		t.Fatalf("login of an unknown user without sign-up: %d", resp.StatusCode)
	}
	resp, tok := login("alice", "alice-password")
	if resp.StatusCode != 201 || tok == "" {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	// The body's name must be the path's.
	body, _ := json.Marshal(map[string]string{"name": "bob", "password": "alice-password"})
	if resp, _ := g.do("PUT", "/-/user/org.couchdb.user:alice", "", body); resp.StatusCode != 400 {
		t.Errorf("name mismatch: %d", resp.StatusCode)
	}
	// whoami
	if resp, b := g.do("GET", "/-/whoami", "Bearer "+tok, nil); resp.StatusCode != 200 || !strings.Contains(string(b), `"alice"`) {
		t.Errorf("whoami: %d %s", resp.StatusCode, b)
	}
	if resp, _ := g.do("GET", "/npm/team/-/whoami", "", nil); resp.StatusCode != 401 {
		t.Errorf("anonymous whoami: %d", resp.StatusCode)
	}
	// Web login is declined so npm falls back to the password prompt.
	if resp, _ := g.do("POST", "/-/v1/login", "", []byte("{}")); resp.StatusCode != 404 {
		t.Errorf("web login: %d", resp.StatusCode)
	}
	// npm token create needs the password again.
	req, _ := json.Marshal(map[string]any{"password": "wrong", "readonly": true})
	if resp, _ := g.do("POST", "/-/npm/v1/tokens", "Bearer "+tok, req); resp.StatusCode != 401 {
		t.Errorf("token create with a wrong password: %d", resp.StatusCode)
	}
	req, _ = json.Marshal(map[string]any{"password": "alice-password", "readonly": true})
	resp, b := g.do("POST", "/-/npm/v1/tokens", "Bearer "+tok, req)
	var created struct{ Token, Key string }
	if json.Unmarshal(b, &created); resp.StatusCode != 200 || !strings.HasPrefix(created.Token, "npmg_") {
		t.Fatalf("token create: %d %s", resp.StatusCode, b)
	}
	resp, b = g.do("GET", "/-/npm/v1/tokens", "Bearer "+tok, nil)
	var list struct {
		Objects []struct {
			Token, Key string
			Readonly   bool
		}
		Total int
	}
	if json.Unmarshal(b, &list); resp.StatusCode != 200 || list.Total != 2 {
		t.Fatalf("token list: %d %s", resp.StatusCode, b)
	}
	for _, o := range list.Objects {
		if strings.Contains(string(b), created.Token) || len(o.Token) > 20 {
			t.Error("token list shows a whole secret")
		}
	}
	// Bob cannot revoke alice's token.
	if resp, _ := g.do("DELETE", "/-/npm/v1/tokens/token/"+created.Key, basicAuth("bob", "bob-password"), nil); resp.StatusCode != 404 {
		t.Errorf("bob revoked alice's token: %d", resp.StatusCode)
	}
	if resp, _ := g.do("DELETE", "/-/npm/v1/tokens/token/"+created.Key, "Bearer "+tok, nil); resp.StatusCode != 204 {
		t.Errorf("revoke: %d", resp.StatusCode)
	}
	if resp, _ := g.do("GET", "/ms", "Bearer "+created.Token, nil); resp.StatusCode != 401 {
		t.Errorf("revoked token: %d, want 401 at once", resp.StatusCode)
	}
	// npm logout revokes the token it sends.
	if resp, _ := g.do("DELETE", "/-/user/token/"+tok, "Bearer "+tok, nil); resp.StatusCode != 200 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ := g.do("GET", "/-/whoami", "Bearer "+tok, nil); resp.StatusCode != 401 {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
	// No secret in any log line.
	all := logs.String()
	for _, secret := range []string{tok, created.Token, "alice-password", "bob-password", base64.StdEncoding.EncodeToString([]byte("alice:alice-password"))} {
		if strings.Contains(all, secret) {
			t.Errorf("a secret reached the log: %.12s…", secret)
		}
	}
	if !strings.Contains(all, "/-/user/token/[redacted]") {
		t.Error("the logout path was not redacted in the access log")
	}
}

// downStore is a credential store whose database cannot be reached.
type downStore struct{}

var errDown = errors.New("dial tcp 10.1.2.3:5432: connection refused")

func (downStore) Exists(string) (bool, error)                   { return false, errDown }
func (downStore) List() ([]auth.UserInfo, error)                { return nil, errDown }
func (downStore) Disabled(string) (bool, error)                 { return false, errDown }
func (downStore) SetDisabled(string, bool) error                { return errDown }
func (downStore) Verify(string, string) (bool, error)           { return false, errDown }
func (downStore) Set(string, string) error                      { return errDown }
func (downStore) Remove(string) error                           { return errDown }
func (downStore) Refresh() error                                { return nil }
func (downStore) Lookup(string, time.Time) (*auth.Token, error) { return nil, errDown }
func (downStore) Create(auth.NewToken, time.Time) (string, *auth.Token, error) {
	return "", nil, errDown
}
func (downStore) Revoke(string) (*auth.Token, error) { return nil, errDown }

type downTokens struct{ downStore }

func (downTokens) List(string) ([]*auth.Token, error) { return nil, errDown }
func (downTokens) Use(string, time.Time) error        { return errDown }
func (downTokens) Touch(string, time.Time) error      { return errDown }

func TestCredentialStoreDownIs503(t *testing.T) {
	svc, err := auth.New(auth.Options{Users: downStore{}, Tokens: downTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), auth: svc, cfg: &config.Config{}}
	check := func(name string, ctx *fasthttp.RequestCtx) {
		t.Helper()
		body := ctx.Response.Body()
		var e struct {
			Error string `json:"error"`
		}
		if ctx.Response.StatusCode() != 503 || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s, want 503 with an npm error", name, ctx.Response.StatusCode(), body)
		}
		if strings.Contains(string(body), "10.1.2.3") || len(ctx.Response.Header.Peek("WWW-Authenticate")) != 0 {
			t.Errorf("%s: %s: the cause leaks, or npm is asked for credentials", name, body)
		}
	}
	for _, header := range []string{"Bearer npmg_x", basicAuth("alice", "alice-password")} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Authorization", header)
		_, err := s.authenticate(&ctx)
		s.fail(&ctx, authFailure(err))
		check(header, &ctx)
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.SetBodyString(`{"name":"alice","password":"alice-password"}`)
	s.login(&ctx, "alice")
	check("npm login", &ctx)
	p := &auth.Principal{Name: "alice", Kind: auth.KindToken}
	var list fasthttp.RequestCtx
	s.listTokens(&list, p)
	check("npm token list", &list)
}
