package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T, signup bool) (*Service, *clock) {
	t.Helper()
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	s, err := New(Options{
		UsersFile: filepath.Join(dir, "users.htpasswd"), TokensFile: filepath.Join(dir, "auth", "tokens.json"),
		Groups: map[string][]string{"admins": {"alice"}}, AllowSignup: signup, Now: c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Users.Set("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func exists(s *Service, name string) bool {
	ok, err := s.Users.Exists(name)
	if err != nil {
		panic(err)
	}
	return ok
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

var client = netip.MustParseAddr("192.0.2.1")

func TestAuthenticateForms(t *testing.T) {
	s, _ := newService(t, false)
	tok, _, _ := s.Tokens.Create(NewToken{User: "alice"}, time.Now())
	key, _, _ := s.Tokens.Create(NewToken{User: "ci", APIKey: true, ReadOnly: true, Feeds: []string{"npm"}}, time.Now())
	tests := []struct {
		name   string
		header string
		want   string
		kind   Kind
		err    error
	}{
		{"anonymous", "", "", 0, nil},
		{"bearer token", "Bearer " + tok, "alice", KindToken, nil},
		{"bearer lower case scheme", "bearer " + tok, "alice", KindToken, nil},
		{"api key as _auth", basic("api", key), "ci", KindAPIKey, nil},
		{"api key as bearer", "Bearer " + key, "ci", KindAPIKey, nil},
		{"token in the password position", basic("alice", tok), "alice", KindToken, nil},
		{"password", basic("alice", "correct horse"), "alice", KindPassword, nil},
		{"wrong password", basic("alice", "wrong"), "", 0, ErrBadCredentials},
		{"unknown token", "Bearer npmg_nope", "", 0, ErrBadCredentials},
		{"not base64", "Basic !!!", "", 0, ErrBadCredentials},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), "", 0, ErrBadCredentials},
		{"other scheme", "Digest x", "", 0, ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Authenticate(tt.header, netip.MustParseAddr("192.0.2.99"))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil || tt.header == "" {
				if p != nil {
					t.Fatalf("principal %+v on failure", p)
				}
				return
			}
			if p.Name != tt.want || p.Kind != tt.kind {
				t.Fatalf("principal %+v, want %s (%s)", p, tt.want, tt.kind)
			}
		})
	}
	p, _ := s.Authenticate("Bearer "+tok, client)
	if len(p.Groups) != 1 || p.Groups[0] != "admins" {
		t.Errorf("groups of alice = %v", p.Groups)
	}
	p, _ = s.Authenticate(basic("api", key), client)
	if !p.ReadOnly || len(p.Feeds) != 1 {
		t.Errorf("API key scope lost: %+v", p)
	}
}

func TestAccessRules(t *testing.T) {
	alice := &Principal{Name: "alice", Groups: []string{"admins"}, Kind: KindToken}
	bob := &Principal{Name: "bob", Kind: KindPassword}
	roKey := &Principal{Name: "ci", Kind: KindAPIKey, ReadOnly: true}
	otherFeed := &Principal{Name: "alice", Kind: KindToken, Feeds: []string{"other"}}
	rule := func(e ...string) Rule {
		r, err := CompileRule(e)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name string
		read []string
		pub  []string
		who  *Principal
		act  Action
		want error
	}{
		{"anonymous read", []string{"$anonymous"}, nil, nil, Read, nil},
		{"anonymous denied", []string{"$authenticated"}, nil, nil, Read, ErrUnauthenticated},
		{"authenticated read", []string{"$authenticated"}, nil, bob, Read, nil},
		{"named user", []string{"bob"}, nil, bob, Read, nil},
		{"group member", []string{"admins"}, nil, alice, Read, nil},
		{"not in list", []string{"admins"}, nil, bob, Read, ErrForbidden},
		{"publish allowed", nil, []string{"$authenticated"}, bob, Publish, nil},
		{"read-only never publishes", nil, []string{"$anonymous"}, roKey, Publish, ErrForbidden},
		{"read-only reads", []string{"$authenticated"}, nil, roKey, Read, nil},
		{"token for another feed", []string{"$anonymous"}, nil, otherFeed, Read, ErrForbidden},
		{"anonymous publish", nil, []string{"$authenticated"}, nil, Publish, ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &FeedAccess{Feed: "npm", Read: rule(tt.read...), Publish: rule(tt.pub...)}
			if err := a.Check(tt.who, tt.act); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	for _, bad := range [][]string{{"$everyone"}, {""}, {"a b"}} {
		if _, err := CompileRule(bad); err == nil {
			t.Errorf("CompileRule(%q) accepted", bad)
		}
	}
}

func TestLoginAndSignup(t *testing.T) {
	s, _ := newService(t, false)
	tok, err := s.Login("alice", "correct horse", client)
	if err != nil || !strings.HasPrefix(tok, "npmg_") {
		t.Fatalf("Login = %q, %v", tok, err)
	}
	if p, err := s.Authenticate("Bearer "+tok, client); err != nil || p.Name != "alice" {
		t.Errorf("login token does not authenticate: %v", err)
	}
	if _, err := s.Login("alice", "nope", client); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := s.Login("mallory", "whatever1", client); !errors.Is(err, ErrBadCredentials) || exists(s, "mallory") {
		t.Errorf("sign-up off created a user: %v", err)
	}
	s2, _ := newService(t, true)
	if _, err := s2.Login("newbie", "longenough", client); err != nil || !exists(s2, "newbie") {
		t.Errorf("sign-up on: %v", err)
	}
	if _, err := s2.Login("x", "short", client); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable) {
		t.Errorf("a short password at sign-up: %v, want ErrInvalid", err)
	}
}

func TestThrottle(t *testing.T) {
	s, c := newService(t, false)
	for range 5 {
		if _, err := s.Authenticate(basic("alice", "wrong"), client); !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	if _, err := s.Authenticate(basic("alice", "correct horse"), client); !errors.Is(err, ErrThrottled) {
		t.Fatalf("after 5 failures the right password got %v, want ErrThrottled", err)
	}
	// Another user behind the same address is not locked out by alice's typos.
	s.Users.Set("bob", "bob-password")
	if p, err := s.Authenticate(basic("bob", "bob-password"), client); err != nil || p.Name != "bob" {
		t.Errorf("bob from the same address: %v", err)
	}
	c.t = c.t.Add(2 * time.Minute)
	if p, err := s.Authenticate(basic("alice", "correct horse"), client); err != nil || p.Name != "alice" {
		t.Fatalf("after the window: %v", err)
	}
	// A spray across many accounts from one address is stopped too.
	for i := range 30 {
		s.Authenticate(basic(fmt.Sprintf("user%d", i), "guess"), client)
	}
	s.Users.Set("carol", "carol-password")
	if _, err := s.Authenticate(basic("carol", "carol-password"), client); !errors.Is(err, ErrThrottled) {
		t.Errorf("after 30 failures from one address: %v, want ErrThrottled", err)
	}
}

func TestTokenExpiryAndRevocation(t *testing.T) {
	s, c := newService(t, false)
	tok, tk, _ := s.Tokens.Create(NewToken{User: "alice", TTL: time.Hour}, c.t)
	if _, err := s.Authenticate("Bearer "+tok, client); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(2 * time.Hour)
	if _, err := s.Authenticate("Bearer "+tok, client); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("expired token: %v", err)
	}
	c.t = c.t.Add(-2 * time.Hour)
	if _, err := s.Tokens.Revoke(tk.Key[:10]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("Bearer "+tok, client); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("revoked token: %v", err)
	}
	if _, err := s.Tokens.Revoke("short"); !errors.Is(err, ErrNoToken) {
		t.Errorf("short prefix: %v", err)
	}
}

func TestFilesHoldNoSecrets(t *testing.T) {
	s, _ := newService(t, false)
	tok, _, _ := s.Tokens.Create(NewToken{User: "alice"}, time.Now())
	data, err := os.ReadFile(s.Tokens.(*Tokens).path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), tok) || strings.Contains(string(data), tok[10:]) {
		t.Error("the token store holds the secret")
	}
	users, _ := os.ReadFile(s.Users.(*Users).path)
	if strings.Contains(string(users), "correct horse") || !strings.HasPrefix(string(users), "alice:$2") {
		t.Errorf("users file: %q", users)
	}
	if st, _ := os.Stat(s.Tokens.(*Tokens).path); st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", st.Mode())
	}
}

func TestChangesFromAnotherProcessAreSeen(t *testing.T) {
	s, _ := newService(t, false)
	// A second store on the same files, as the CLI would open.
	other, err := OpenTokens(s.Tokens.(*Tokens).path)
	if err != nil {
		t.Fatal(err)
	}
	tok, tk, _ := other.Create(NewToken{User: "alice", APIKey: true}, time.Now())
	if err := s.Tokens.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(basic("api", tok), client); err != nil {
		t.Fatalf("key created elsewhere not seen: %v", err)
	}
	other.Revoke(tk.Key)
	s.Tokens.Refresh()
	if _, err := s.Authenticate(basic("api", tok), client); err == nil {
		t.Fatal("key revoked elsewhere still accepted")
	}
}

func TestHtpasswdCompatibility(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "htpasswd")
	// Written by Apache's htpasswd -B (password "secret123") and by Verdaccio (with its trailing field).
	os.WriteFile(p, []byte("# users\nbob:$2y$05$2w9LZ/mB4JfVpRLeY4OBEOJc5l4cRaPf6oZAcQYnVkI5Fw9ktUEo.\ncarol:$2y$05$2w9LZ/mB4JfVpRLeY4OBEOJc5l4cRaPf6oZAcQYnVkI5Fw9ktUEo.:autocreated 2024-01-01\n"), 0o600)
	u, err := OpenUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := u.List(); len(got) != 2 {
		t.Fatalf("users %v", got)
	}
	// Apache writes the $2y$ variant; it must verify, not only parse.
	h, _ := bcrypt.GenerateFromPassword([]byte("secret123"), 4)
	y := strings.Replace(string(h), "$2a$", "$2y$", 1)
	os.WriteFile(p, []byte("erin:"+y+"\n"), 0o600)
	if err := u.Refresh(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := u.Verify("erin", "secret123"); !ok {
		t.Error("$2y$ hash does not verify")
	}
	if ok, _ := u.Verify("erin", "secret124"); ok {
		t.Error("a wrong password verifies against a $2y$ hash")
	}
	os.WriteFile(p, []byte("dave:{SHA}abc\n"), 0o600)
	if _, err := OpenUsers(p); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("non-bcrypt hash: %v", err)
	}
}

// TestAdminRule: feed admins are a list like the others; read-only
// credentials and credentials for another feed are never admins, and
// publish rights do not make one.
func TestAdminRule(t *testing.T) {
	rule := func(e ...string) Rule {
		r, err := CompileRule(e)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := &FeedAccess{Feed: "npm", Read: rule("$anonymous"), Publish: rule("$authenticated"), Admin: rule("root", "ops")}
	tests := []struct {
		name string
		who  *Principal
		want error
	}{
		{"named admin", &Principal{Name: "root", Kind: KindToken}, nil},
		{"admin group", &Principal{Name: "eve", Groups: []string{"ops"}, Kind: KindPassword}, nil},
		{"a publisher", &Principal{Name: "bob", Kind: KindToken}, ErrForbidden},
		{"read-only credential of an admin", &Principal{Name: "root", Kind: KindAPIKey, ReadOnly: true}, ErrForbidden},
		{"admin's token for another feed", &Principal{Name: "root", Kind: KindToken, Feeds: []string{"other"}}, ErrForbidden},
		{"anonymous", nil, ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.Check(tt.who, Admin); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	if err := (&FeedAccess{Feed: "npm"}).Check(&Principal{Name: "root"}, Admin); !errors.Is(err, ErrForbidden) {
		t.Errorf("no admin list: %v, want nobody an admin", err)
	}
}

// TestThrottlePerUserAndAddress: failures lock a user out only at the
// address they came from, and a spray locks out only its address.
func TestThrottlePerUserAndAddress(t *testing.T) {
	attacker, office := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("192.0.2.50")
	s, _ := newService(t, false)
	s.Users.Set("carol", "carol-password")
	for range 5 {
		if _, err := s.Login("carol", "guess", attacker); !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	for range 5 {
		if _, err := s.Login("nobody", "guess", attacker); !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, user, password string
		from                 netip.Addr
		want                 error
	}{
		{"carol from the attacker's address", "carol", "carol-password", attacker, ErrThrottled},
		{"an unknown name from there, as a known one", "nobody", "guess", attacker, ErrThrottled},
		{"carol from her office", "carol", "carol-password", office, nil},
		{"a typo from her office is a 401, not a 429", "carol", "typo", office, ErrBadCredentials},
		{"alice from the attacker's address (10 failures < 30)", "alice", "correct horse", attacker, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Login(tt.user, tt.password, tt.from)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == ErrThrottled {
				if d := RetryAfter(err); d < 50*time.Second || d > time.Minute {
					t.Errorf("RetryAfter = %v, want the rest of the minute", d)
				}
				if !strings.Contains(err.Error(), "try again in") {
					t.Errorf("error %q does not say when to retry", err)
				}
			}
		})
	}
	// An unknown name and a wrong password read the same.
	_, unknown := s.Login("nobody2", "guess", office)
	_, wrong := s.Login("carol", "guess", netip.MustParseAddr("192.0.2.51"))
	if unknown.Error() != wrong.Error() {
		t.Errorf("unknown user %q, wrong password %q: want the same message", unknown, wrong)
	}
	// A spray across accounts locks out its address (an IPv6 client is
	// its /64), not others.
	sprayer := netip.MustParseAddr("2001:db8:1:2::10")
	for i := range 30 {
		s.Login(fmt.Sprintf("user%d", i), "guess", sprayer)
	}
	for _, tt := range []struct {
		from netip.Addr
		want error
	}{
		{sprayer, ErrThrottled},
		{netip.MustParseAddr("2001:db8:1:2::99"), ErrThrottled},
		{netip.MustParseAddr("2001:db8:1:3::10"), nil},
	} {
		if _, err := s.Login("carol", "carol-password", tt.from); !errors.Is(err, tt.want) {
			t.Errorf("carol from %v after a spray from %v: %v, want %v", tt.from, sprayer, err, tt.want)
		}
	}
}

// gatedUsers is a user store whose password checks wait for a gate, to
// see how many are queued.
type gatedUsers struct {
	UserStore
	gate chan struct{}
}

func (g *gatedUsers) Verify(name, password string) (bool, error) {
	<-g.gate
	return g.UserStore.Verify(name, password)
}

// newGatedCarol is a service whose one user, carol, has her password
// checked only when the test lets it through g.gate.
func newGatedCarol(t *testing.T) (*Service, *gatedUsers) {
	t.Helper()
	dir := t.TempDir()
	users, err := OpenUsers(filepath.Join(dir, "users.htpasswd"))
	if err != nil {
		t.Fatal(err)
	}
	users.Set("carol", "carol-password")
	g := &gatedUsers{UserStore: users, gate: make(chan struct{})}
	s, err := New(Options{Users: g, TokensFile: filepath.Join(dir, "tokens.json")})
	if err != nil {
		t.Fatal(err)
	}
	return s, g
}

func TestBcryptBoundedPerAddress(t *testing.T) {
	s, g := newGatedCarol(t)
	state := func() (calls, waiting int) {
		s.checkMu.Lock()
		defer s.checkMu.Unlock()
		return s.bcryptCalls, s.bcryptWaiting
	}
	settle := func(want int) {
		t.Helper()
		for range 2000 {
			if c, w := state(); c+w == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
		c, w := state()
		t.Fatalf("%d checks running and %d waiting, want %d in all", c, w, want)
	}
	// A spray: 20 addresses, 10 concurrent guesses each.
	const addrs, each = 20, 10
	results := make(chan error, addrs*each)
	for a := range addrs {
		from := netip.AddrFrom4([4]byte{203, 0, 113, byte(a + 1)})
		for i := range each {
			go func() {
				_, err := s.Login("carol", fmt.Sprintf("guess-%d", i), from)
				results <- err
			}()
		}
	}
	// All but one per address are refused at once, without a check.
	for range addrs * (each - 1) {
		if err := <-results; !errors.Is(err, ErrThrottled) {
			t.Fatalf("a concurrent attempt from a busy address: %v, want ErrThrottled", err)
		}
	}
	settle(addrs)
	slots := cap(s.bcryptSem)
	if c, w := state(); c != slots || w != addrs-slots {
		t.Fatalf("%d running, %d waiting; want %d running and one waiting per address", c, w, slots)
	}
	// The real user from a 21st address is queued behind at most one
	// check per spraying address, and gets in.
	ok := make(chan error, 1)
	go func() {
		_, err := s.Login("carol", "carol-password", netip.MustParseAddr("192.0.2.200"))
		ok <- err
	}()
	settle(addrs + 1)
	close(g.gate)
	if err := <-ok; err != nil {
		t.Fatalf("carol behind a spray: %v", err)
	}
	for range addrs {
		if err := <-results; !errors.Is(err, ErrBadCredentials) {
			t.Errorf("a checked spray attempt: %v, want ErrBadCredentials", err)
		}
	}
	if c, _ := state(); c != addrs+1 {
		t.Errorf("%d bcrypt comparisons, want %d (one per address)", c, addrs+1)
	}

	// Many more addresses: the queue stops at maxBcryptQueued.
	g.gate = make(chan struct{})
	s.bcryptCalls = 0
	const many = maxBcryptQueued + 20
	more := make(chan error, many)
	for a := range many {
		from := netip.AddrFrom4([4]byte{10, 0, byte(a / 250), byte(a%250 + 1)})
		go func() {
			_, err := s.Login("carol", "guess", from)
			more <- err
		}()
	}
	for range many - slots - maxBcryptQueued {
		if err := <-more; !errors.Is(err, ErrThrottled) {
			t.Fatalf("past a full queue: %v, want ErrThrottled", err)
		}
	}
	settle(slots + maxBcryptQueued)
	close(g.gate)
	for range slots + maxBcryptQueued {
		<-more
	}
}

// TestTokenCreatedElsewhereWorksAtOnce: a token the CLI just wrote is
// found on its first use, without waiting for Watch; a burst of unknown
// secrets costs one re-read, not one each.
func TestTokenCreatedElsewhereWorksAtOnce(t *testing.T) {
	s, _ := newService(t, false)
	cli, err := OpenTokens(s.Tokens.(*Tokens).path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tok, _, err := cli.Create(NewToken{User: "alice"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if p, err := s.Authenticate("Bearer "+tok, client); err != nil || p.Name != "alice" {
			t.Fatalf("token %d on its first use: %v", i, err)
		}
	}
	store := s.Tokens.(*Tokens)
	store.missMu.Lock()
	before := store.rounds
	store.missMu.Unlock()
	const burst = 200
	errs := make(chan error, burst)
	for range burst {
		go func() {
			_, err := s.Authenticate("Bearer npmg_"+rand.Text(), client)
			errs <- err
		}()
	}
	for range burst {
		if err := <-errs; !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("unknown token: %v", err)
		}
	}
	store.missMu.Lock()
	rounds := store.rounds - before
	store.missMu.Unlock()
	if rounds > 3 {
		t.Errorf("%d unknown secrets started %d re-reads of the file, want a few at most", burst, rounds)
	}
	// Revocation elsewhere still takes effect at the next refresh.
	tok, tk, _ := cli.Create(NewToken{User: "alice"}, time.Now())
	if _, err := s.Authenticate("Bearer "+tok, client); err != nil {
		t.Fatal(err)
	}
	cli.Revoke(tk.Key)
	s.Tokens.Refresh()
	if _, err := s.Authenticate("Bearer "+tok, client); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("revoked token: %v", err)
	}
}

// TestTokenListSeesTheCLIAtOnce: npm token list and revoke (which checks
// the list) see a token the CLI just made.
func TestTokenListSeesTheCLIAtOnce(t *testing.T) {
	s, _ := newService(t, false)
	cli, err := OpenTokens(s.Tokens.(*Tokens).path)
	if err != nil {
		t.Fatal(err)
	}
	_, tk, _ := cli.Create(NewToken{User: "alice"}, time.Now())
	list, err := s.Tokens.List("alice")
	if err != nil || len(list) != 1 || list[0].Key != tk.Key {
		t.Fatalf("List right after the CLI created a token: %v %v", list, err)
	}
}

// TestConcurrentSameCredentialsShareOneCheck: npm's first parallel
// requests with one user's Basic credentials from one address are not
// refused as a spray: they wait for one bcrypt comparison.
func TestConcurrentSameCredentialsShareOneCheck(t *testing.T) {
	s, g := newGatedCarol(t)
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.Authenticate(basic("carol", "carol-password"), client)
			errs <- err
		}()
	}
	for range 2000 {
		s.checkMu.Lock()
		started := s.bcryptCalls
		s.checkMu.Unlock()
		if started == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(g.gate)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("a parallel request with the right password: %v", err)
		}
	}
	if s.bcryptCalls != 1 {
		t.Errorf("%d bcrypt comparisons for %d identical requests, want 1", s.bcryptCalls, n)
	}
}
