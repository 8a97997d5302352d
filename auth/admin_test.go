package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDisabledUserIsLockedOut: once bob is disabled, nothing of his
// works: not his password (checked before, and remembered), nor his npm
// token, API key or web session, nor a token made while he was being
// disabled, nor npm login; his name stays taken; a new password leaves him
// disabled. Enabling him brings the password back, not the tokens.
func TestDisabledUserIsLockedOut(t *testing.T) {
	s, c := newService(t, true)
	if err := s.Users.Set("bob", "bob's password"); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Login("bob", "bob's password", client)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := s.Tokens.Create(NewToken{User: "bob", APIKey: true}, c.now())
	session, err := s.SignIn("bob", "bob's password", client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	aliceTok, _, _ := s.Tokens.Create(NewToken{User: "alice"}, c.now())
	// The password is remembered once checked (no bcrypt per request).
	if _, err := s.Authenticate(basic("bob", "bob's password"), client); err != nil {
		t.Fatal(err)
	}

	n, err := s.DisableUser("bob")
	if err != nil || n != 3 {
		t.Fatalf("DisableUser = %d, %v; want 3 tokens revoked", n, err)
	}
	// A token that appears after the sweep (made by a request already
	// past its check, or by hand in the file) is refused all the same.
	late, _, _ := s.Tokens.Create(NewToken{User: "bob", Name: "late"}, c.now())

	for name, header := range map[string]string{
		"password": basic("bob", "bob's password"), "token": "Bearer " + tok,
		"api key": basic("api", key), "late token": "Bearer " + late, "token as password": basic("bob", late),
	} {
		if p, err := s.Authenticate(header, client); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("disabled bob's %s: %v, %v; want ErrBadCredentials", name, p, err)
		}
	}
	if _, err := s.BySession(session); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("disabled bob's web session: %v", err)
	}
	if _, err := s.Login("bob", "bob's password", client); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("npm login as disabled bob: %v", err)
	}
	if _, err := s.SignIn("bob", "bob's password", client, time.Hour); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("web sign-in as disabled bob: %v", err)
	}
	if !exists(s, "bob") {
		t.Error("a disabled user's name is free to be registered again")
	}
	if err := s.Users.Set("bob", "a new password"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Users.Verify("bob", "a new password"); ok {
		t.Error("a new password enabled a disabled user")
	}
	if p, err := s.Authenticate("Bearer "+aliceTok, client); err != nil || p.Name != "alice" {
		t.Errorf("alice, not disabled: %v, %v", p, err)
	}
	if list, _ := s.Users.List(); len(list) != 2 || list[0] != (UserInfo{Name: "alice"}) || list[1] != (UserInfo{Name: "bob", Disabled: true}) {
		t.Errorf("List = %v", list)
	}

	if err := s.EnableUser("bob"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate(basic("bob", "a new password"), client); err != nil || p.Name != "bob" {
		t.Errorf("enabled bob's password: %v, %v", p, err)
	}
	if _, err := s.Authenticate("Bearer "+tok, client); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a token revoked by disabling came back with enabling: %v", err)
	}
	for _, name := range []string{"carol", ""} {
		if _, err := s.DisableUser(name); !errors.Is(err, ErrNoUser) {
			t.Errorf("DisableUser(%q) = %v, want ErrNoUser", name, err)
		}
	}
}

// TestDisabledByAnotherProcess: `npmgate user disable` on the server's
// machine writes the htpasswd file; the running server, which remembers
// bob's password and holds his tokens in memory, refuses both once it has
// read the file, even before the tokens' revocation reaches it.
func TestDisabledByAnotherProcess(t *testing.T) {
	s, _ := newService(t, false)
	if err := s.Users.Set("bob", "bob's password"); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Login("bob", "bob's password", client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(basic("bob", "bob's password"), client); err != nil {
		t.Fatal(err)
	}
	cli, err := OpenUsers(s.Users.(*Users).path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.SetDisabled("bob", true); err != nil {
		t.Fatal(err)
	}
	touchLater(t, s.Users.(*Users).path)
	if err := s.Users.Refresh(); err != nil {
		t.Fatal(err)
	}
	for _, header := range []string{basic("bob", "bob's password"), "Bearer " + tok} {
		if _, err := s.Authenticate(header, client); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%.12s… after the CLI disabled bob: %v", header, err)
		}
	}
}

// touchLater moves a file's modification time on, so that a re-read
// within the same clock tick sees it changed.
func touchLater(t *testing.T, path string) {
	t.Helper()
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
}

// TestDisabledUserInHtpasswd: a disabled user is htpasswd's locked
// account ("!" before the hash), so the file stays one Apache's tools and
// `npmgate user import` read; the lock survives a reading.
func TestDisabledUserInHtpasswd(t *testing.T) {
	dir := t.TempDir()
	u, err := OpenUsers(filepath.Join(dir, "users.htpasswd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob"} {
		if err := u.Set(name, "long enough"); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.SetDisabled("bob", true); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "users.htpasswd"))
	if !strings.Contains(string(data), "\nbob:!$2a$") || strings.Contains(string(data), "alice:!") {
		t.Errorf("file:\n%s", data)
	}
	read, err := ReadHtpasswd(filepath.Join(dir, "users.htpasswd"))
	if err != nil || len(read) != 2 || !isLocked(read[1].Hash) || isLocked(read[0].Hash) {
		t.Fatalf("ReadHtpasswd = %v, %v", read, err)
	}
	if err := CheckHash([]byte("!not bcrypt")); err == nil {
		t.Error("a lock mark made a non-bcrypt hash acceptable")
	}
	if d, err := u.Disabled("nobody"); d || !errors.Is(err, ErrNoUser) {
		t.Errorf("Disabled(nobody) = %v, %v", d, err)
	}
	if err := u.SetDisabled("nobody", true); !errors.Is(err, ErrNoUser) {
		t.Errorf("SetDisabled(nobody) = %v", err)
	}
}

// TestIsAdmin: auth.admins names users and groups; a narrowed credential
// of an admin is not an admin's.
func TestIsAdmin(t *testing.T) {
	rule, err := CompileRule([]string{"ops", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{UsersFile: filepath.Join(t.TempDir(), "u"), TokensFile: filepath.Join(t.TempDir(), "t"), Admins: rule})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    *Principal
		want bool
	}{
		{nil, false},
		{&Principal{Name: "carol", Kind: KindToken}, true},
		{&Principal{Name: "dave", Groups: []string{"ops"}, Kind: KindPassword}, true},
		{&Principal{Name: "erin", Groups: []string{"dev"}, Kind: KindToken}, false},
		{&Principal{Name: "carol", Kind: KindToken, ReadOnly: true}, false},
		{&Principal{Name: "carol", Kind: KindToken, Feeds: []string{"npm"}}, false},
		{&Principal{Name: "carol", Kind: KindToken, Packages: []string{"@corp/*"}}, false},
	} {
		if got := s.IsAdmin(tc.p); got != tc.want {
			t.Errorf("IsAdmin(%+v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	none, _ := New(Options{UsersFile: filepath.Join(t.TempDir(), "u"), TokensFile: filepath.Join(t.TempDir(), "t")})
	if none.IsAdmin(&Principal{Name: "carol", Kind: KindToken}) {
		t.Error("with no auth.admins, someone is an admin")
	}
}

// TestExpiredTokensArePruned: tokens expired for ExpiredKept are deleted
// when a token is made (a web session per sign-in, a five-minute token per
// CI publish would otherwise grow the file for ever); live tokens stay.
func TestExpiredTokensArePruned(t *testing.T) {
	tokens, err := OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	_, short, _ := tokens.Create(NewToken{User: "ci", TTL: 5 * time.Minute}, t0)
	_, forever, _ := tokens.Create(NewToken{User: "alice"}, t0)
	_, recent, _ := tokens.Create(NewToken{User: "bob", TTL: 5 * time.Minute}, t0.Add(ExpiredKept))
	tokens.Create(NewToken{User: "carol"}, t0.Add(ExpiredKept+time.Hour))
	keys := map[string]bool{}
	list, _ := tokens.List("")
	for _, tk := range list {
		keys[tk.Key] = true
	}
	if keys[short.Key] || !keys[forever.Key] || !keys[recent.Key] || len(list) != 3 {
		t.Errorf("after a day: %d tokens; the one expired a day ago kept: %v, the live one: %v, the one expired an hour ago: %v",
			len(list), keys[short.Key], keys[forever.Key], keys[recent.Key])
	}
}
