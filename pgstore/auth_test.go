package pgstore

import (
	"encoding/base64"
	"errors"
	"net/netip"
	neturl "net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/npmgate/npmgate/auth"
)

var client = netip.MustParseAddr("192.0.2.1")

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// service is the auth service of one replica, on the database's stores.
func service(t *testing.T, db *DB, c *clock) *auth.Service {
	t.Helper()
	s, err := auth.New(auth.Options{Users: db.Users(), Tokens: db.Tokens(), TwoFactorStore: db.TwoFactor(), Groups: map[string][]string{"admins": {"alice"}}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsers(t *testing.T) {
	u := open(t, migrated(t)).Users()
	if err := u.Set("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := u.Set("bob", "bob-password"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, password string
		want                 bool
	}{
		{"right password", "alice", "correct horse", true},
		{"wrong password", "alice", "correct horsE", false},
		{"unknown user", "mallory", "correct horse", false},
		{"another user's password", "bob", "correct horse", false},
	}
	for _, tt := range tests {
		if ok, err := u.Verify(tt.user, tt.password); ok != tt.want || err != nil {
			t.Errorf("%s: Verify = %v, %v", tt.name, ok, err)
		}
	}
	if err := u.Set("alice", "new password"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := u.Verify("alice", "correct horse"); ok {
		t.Error("the old password still verifies")
	}
	if ok, _ := u.Verify("alice", "new password"); !ok {
		t.Error("the new password does not verify")
	}
	for _, bad := range [][2]string{{"api", "long enough"}, {"a b", "long enough"}, {"carol", "short"}} {
		if err := u.Set(bad[0], bad[1]); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("Set(%q, %q) = %v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
	if list, err := u.List(); err != nil || !slices.Equal(list, []auth.UserInfo{{Name: "alice"}, {Name: "bob"}}) {
		t.Errorf("List = %v, %v", list, err)
	}
	if ok, err := u.Exists("bob"); !ok || err != nil {
		t.Errorf("Exists(bob) = %v, %v", ok, err)
	}
	if err := u.Remove("bob"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := u.Exists("bob"); ok {
		t.Error("bob still exists")
	}
	if err := u.Remove("bob"); !errors.Is(err, auth.ErrNoUser) {
		t.Errorf("removing a missing user: %v", err)
	}
}

// The hashes are the htpasswd file's: users move from the file to the
// database as they are.
func TestImportUsersFromHtpasswd(t *testing.T) {
	ctx := testCtx(t)
	db := open(t, migrated(t))
	path := filepath.Join(t.TempDir(), "htpasswd")
	file, _ := auth.OpenUsers(path)
	file.Set("alice", "alice-file-password")
	file.Set("bob", "bob-file-password")
	db.Users().Set("alice", "alice-db-password")
	users, err := auth.ReadHtpasswd(path)
	if err != nil {
		t.Fatal(err)
	}
	added, err := db.ImportUsers(ctx, users)
	if err != nil || !slices.Equal(added, []string{"bob"}) {
		t.Fatalf("ImportUsers = %v, %v; want bob added", added, err)
	}
	for _, c := range [][2]string{{"bob", "bob-file-password"}, {"alice", "alice-db-password"}} {
		if ok, err := db.Users().Verify(c[0], c[1]); !ok || err != nil {
			t.Errorf("%s after import: %v, %v", c[0], ok, err)
		}
	}
	if _, err := db.ImportUsers(ctx, []auth.UserHash{{Name: "x", Hash: []byte("{SHA}abc")}}); err == nil {
		t.Error("a non-bcrypt hash was imported")
	}
}

func TestTokens(t *testing.T) {
	url := migrated(t)
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	db := open(t, url)
	s := service(t, db, c)
	if err := s.Users.Set("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	tok, tk, err := s.Tokens.Create(auth.NewToken{User: "alice", Name: "laptop", TTL: time.Hour}, c.t)
	if err != nil || !strings.HasPrefix(tok, "npmg_") || tk.Expires != c.t.Add(time.Hour) {
		t.Fatalf("Create = %q, %+v, %v", tok, tk, err)
	}
	key, _, _ := s.Tokens.Create(auth.NewToken{User: "ci", APIKey: true, ReadOnly: true, Feeds: []string{"main", "team"}}, c.t.Add(time.Second))
	tests := []struct {
		name     string
		header   string
		user     string
		kind     auth.Kind
		readOnly bool
		feeds    []string
		err      error
	}{
		{"token", "Bearer " + tok, "alice", auth.KindToken, false, nil, nil},
		{"token in the password position", basic("alice", tok), "alice", auth.KindToken, false, nil, nil},
		{"read-only API key with feeds", basic("api", key), "ci", auth.KindAPIKey, true, []string{"main", "team"}, nil},
		{"password", basic("alice", "correct horse"), "alice", auth.KindPassword, false, nil, nil},
		{"unknown token", "Bearer npmg_unknown", "", 0, false, nil, auth.ErrBadCredentials},
		{"not a secret", "Bearer abc", "", 0, false, nil, auth.ErrBadCredentials},
		{"wrong password", basic("alice", "wrong"), "", 0, false, nil, auth.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Authenticate(tt.header, client)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if p.Name != tt.user || p.Kind != tt.kind || p.ReadOnly != tt.readOnly || !slices.Equal(p.Feeds, tt.feeds) {
				t.Errorf("principal %+v", p)
			}
		})
	}
	p, _ := s.Authenticate("Bearer "+tok, client)
	if !slices.Equal(p.Groups, []string{"admins"}) || p.TokenKey != auth.KeyOf(tok) {
		t.Errorf("principal %+v", p)
	}

	// Expiry follows the service's clock.
	c.t = c.t.Add(2 * time.Hour)
	if _, err := s.Authenticate("Bearer "+tok, client); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("expired token: %v", err)
	}
	c.t = c.t.Add(-2 * time.Hour)

	list, err := s.Tokens.List("")
	if err != nil || len(list) != 2 || list[0].Key != tk.Key || list[1].User != "ci" {
		t.Fatalf("List = %v, %v", list, err)
	}
	got := list[0]
	if got.Prefix != tok[:9] || got.Name != "laptop" || got.Kind != "token" || !got.Created.Equal(tk.Created) || !got.Expires.Equal(tk.Expires) || got.Feeds != nil {
		t.Errorf("stored token %+v, created %+v", got, tk)
	}
	if mine, _ := s.Tokens.List("alice"); len(mine) != 1 || mine[0].User != "alice" {
		t.Errorf("List(alice) = %v", mine)
	}

	// Revoke: by a prefix of at least 8 characters, and never ambiguously.
	if _, err := s.Tokens.Revoke(tk.Key[:7]); !errors.Is(err, auth.ErrNoToken) {
		t.Errorf("a 7-character prefix: %v", err)
	}
	if _, err := s.Tokens.Revoke("0123456789"); !errors.Is(err, auth.ErrNoToken) {
		t.Errorf("an unknown key: %v", err)
	}
	gone, err := s.Tokens.Revoke(tk.Key[:10])
	if err != nil || gone.Key != tk.Key {
		t.Fatalf("Revoke by prefix = %+v, %v", gone, err)
	}
	if _, err := s.Authenticate("Bearer "+tok, client); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("revoked token: %v", err)
	}
	if _, err := s.Tokens.Revoke(auth.KeyOf(key)); err != nil {
		t.Errorf("Revoke by key: %v", err)
	}
	if list, _ := s.Tokens.List(""); len(list) != 0 {
		t.Errorf("tokens left: %v", list)
	}
}

func TestRevokePrefixMatchingSeveralTokens(t *testing.T) {
	tokens := open(t, migrated(t)).Tokens()
	var keys []string
	for range 3 {
		_, tk, err := tokens.Create(auth.NewToken{User: "alice"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tk.Key)
	}
	// Make two keys share their first 12 characters, as chance would
	// after very many tokens.
	differ := "0"
	if keys[0][12] == '0' {
		differ = "1"
	}
	other := keys[0][:12] + differ + keys[1][13:]
	if _, err := tokens.(*Tokens).db.pool.Exec(testCtx(t), "UPDATE tokens SET key = $1 WHERE key = $2", other, keys[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Revoke(keys[0][:12]); !errors.Is(err, auth.ErrNoToken) || !strings.Contains(err.Error(), "several") {
		t.Errorf("an ambiguous prefix: %v", err)
	}
	if list, _ := tokens.List(""); len(list) != 3 {
		t.Errorf("%d tokens left after an ambiguous revoke, want 3", len(list))
	}
	if tk, err := tokens.Revoke(keys[0][:13]); err != nil || tk.Key != keys[0] {
		t.Errorf("a prefix one character longer: %v, %v", tk, err)
	}
	if tk, err := tokens.Revoke(other); err != nil || tk.Key != other {
		t.Errorf("by key: %v, %v", tk, err)
	}
}

// A token revoked through one replica fails on another on the very next
// request: nothing is cached.
func TestRevocationReachesEveryReplica(t *testing.T) {
	url := migrated(t)
	c := &clock{t: time.Now()}
	one, two := service(t, open(t, url), c), service(t, open(t, url), c)
	tok, tk, err := one.Tokens.Create(auth.NewToken{User: "alice"}, c.t)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := two.Authenticate("Bearer "+tok, client); err != nil || p.Name != "alice" {
		t.Fatalf("a token made on replica one, on replica two: %v", err)
	}
	if _, err := one.Tokens.Revoke(tk.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Authenticate("Bearer "+tok, client); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("a token revoked on replica one, on replica two: %v", err)
	}
	// A user added on one replica can log in on the other.
	if err := one.Users.Set("bob", "bob-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Login("bob", "bob-password", client); err != nil {
		t.Errorf("login on replica two: %v", err)
	}
}

// A database that cannot be reached is ErrUnavailable, not bad credentials.
func TestDatabaseDownIsUnavailable(t *testing.T) {
	db := open(t, migrated(t))
	c := &clock{t: time.Now()}
	s := service(t, db, c)
	tok, _, err := s.Tokens.Create(auth.NewToken{User: "alice"}, c.t)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, h := range []string{"Bearer " + tok, basic("alice", "correct horse")} {
		if _, err := s.Authenticate(h, client); !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("Authenticate(%q) with the database closed = %v", h, err)
		}
	}
}

// TestDisablingReachesEveryReplica: a user disabled on one replica is
// locked out on another at once: the password replica two remembers, and
// a token made after the sweep, which the token lookup refuses in the same
// query. Users and their lock move between the file and the database.
func TestDisablingReachesEveryReplica(t *testing.T) {
	url := migrated(t)
	c := &clock{t: time.Now()}
	one, two := service(t, open(t, url), c), service(t, open(t, url), c)
	if err := one.Users.Set("bob", "bob-password"); err != nil {
		t.Fatal(err)
	}
	tok, err := one.Login("bob", "bob-password", client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := two.Authenticate(basic("bob", "bob-password"), client); err != nil {
		t.Fatal(err)
	}
	if n, err := one.DisableUser("bob"); err != nil || n != 1 {
		t.Fatalf("DisableUser = %d, %v", n, err)
	}
	late, _, _ := one.Tokens.Create(auth.NewToken{User: "bob", Name: "late"}, c.t)
	for name, header := range map[string]string{"password": basic("bob", "bob-password"), "token": "Bearer " + tok, "late token": "Bearer " + late} {
		if _, err := two.Authenticate(header, client); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("disabled bob's %s on replica two: %v", name, err)
		}
	}
	if _, err := two.Tokens.Lookup(late, c.t); !errors.Is(err, auth.ErrNoToken) {
		t.Errorf("Lookup of a disabled user's token: %v", err)
	}
	if err := two.Users.Set("bob", "another-password"); err != nil {
		t.Fatal(err)
	}
	list, err := two.Users.List()
	if err != nil || !slices.Equal(list, []auth.UserInfo{{Name: "bob", Disabled: true}}) {
		t.Errorf("List after a new password = %v, %v", list, err)
	}
	if d, err := two.Users.Disabled("nobody"); d || !errors.Is(err, auth.ErrNoUser) {
		t.Errorf("Disabled(nobody) = %v, %v", d, err)
	}
	if err := two.Users.SetDisabled("nobody", true); !errors.Is(err, auth.ErrNoUser) {
		t.Errorf("SetDisabled(nobody) = %v", err)
	}

	// The lock moves with the user: file to database.
	path := filepath.Join(t.TempDir(), "htpasswd")
	file, _ := auth.OpenUsers(path)
	file.Set("carol", "carol-password")
	file.SetDisabled("carol", true)
	users, _ := auth.ReadHtpasswd(path)
	db := open(t, url)
	if _, err := db.ImportUsers(testCtx(t), users); err != nil {
		t.Fatal(err)
	}
	if d, err := db.Users().Disabled("carol"); !d || err != nil {
		t.Errorf("imported disabled carol: %v, %v", d, err)
	}
	if ok, _ := db.Users().Verify("carol", "carol-password"); ok {
		t.Error("imported disabled carol's password verifies")
	}

	if err := one.EnableUser("bob"); err != nil {
		t.Fatal(err)
	}
	if p, err := two.Authenticate(basic("bob", "another-password"), client); err != nil || p.Name != "bob" {
		t.Errorf("enabled bob on replica two: %v, %v", p, err)
	}
	if _, err := two.Authenticate("Bearer "+late, client); err != nil {
		t.Errorf("a token that was never revoked works once its user is enabled: %v", err)
	}
}

// TestTwoFactorAcrossReplicas: a second factor enrolled through one
// replica is asked for by another; of the same code sent to two replicas
// at once, one is accepted; a recovery code is spent everywhere; a
// disabled factor is gone everywhere.
func TestTwoFactorAcrossReplicas(t *testing.T) {
	url := migrated(t)
	c := &clock{t: time.Now()}
	one, two := service(t, open(t, url), c), service(t, open(t, url), c)
	alice := &auth.Principal{Name: "alice", Kind: auth.KindToken}
	if err := two.CheckOTP(alice, "", client, false); err != nil {
		t.Fatalf("before enrolment: %v", err)
	}
	uri, codes, err := one.TwoFactor.Enable("alice", "npmgate")
	if err != nil {
		t.Fatal(err)
	}
	if err := two.CheckOTP(alice, "", client, false); !errors.Is(err, auth.ErrOTPRequired) {
		t.Errorf("replica two, no code: %v, want ErrOTPRequired", err)
	}
	u, err := neturl.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	code, err := auth.TOTPCode(u.Query().Get("secret"), c.t)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for _, s := range []*auth.Service{one, two, one, two} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.CheckOTP(alice, code, client, false) == nil {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 1 {
		t.Errorf("one code sent to both replicas four times was accepted %d times", accepted.Load())
	}
	if err := one.CheckOTP(alice, codes[0], client, false); err != nil {
		t.Errorf("a recovery code at replica one: %v", err)
	}
	if err := two.CheckOTP(alice, codes[0], client, false); !errors.Is(err, auth.ErrOTPRequired) {
		t.Errorf("the spent recovery code at replica two: %v", err)
	}
	if err := two.TwoFactor.Disable("alice"); err != nil {
		t.Fatal(err)
	}
	if err := one.CheckOTP(alice, "", client, true); err == nil || errors.Is(err, auth.ErrOTPRequired) {
		t.Errorf("replica one after replica two disabled it, with require_2fa: %v, want the refusal to enrol", err)
	}
}

// TestExpiredTokensArePrunedInTheDatabase: as the file store, at most once
// a minute per replica.
func TestExpiredTokensArePrunedInTheDatabase(t *testing.T) {
	db := open(t, migrated(t))
	tokens := db.Tokens()
	t0 := time.Now().Add(-48 * time.Hour)
	_, short, _ := tokens.Create(auth.NewToken{User: "ci", TTL: 5 * time.Minute}, t0)
	_, forever, _ := tokens.Create(auth.NewToken{User: "alice"}, t0)
	db.tokensPruned.last.Store(0)
	tokens.Create(auth.NewToken{User: "carol"}, time.Now())
	list, err := tokens.List("")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Key != forever.Key {
		t.Errorf("after pruning: %d tokens (%v); the token expired two days ago (%s…) must go", len(list), list, short.Key[:8])
	}
}
