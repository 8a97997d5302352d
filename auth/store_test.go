package auth

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// downStore is a user store (and, in downTokens, a token store) whose
// backend is gone.
type downStore struct{ err error }

func (d downStore) Exists(string) (bool, error)                        { return false, d.err }
func (d downStore) List() ([]UserInfo, error)                          { return nil, d.err }
func (d downStore) Disabled(string) (bool, error)                      { return false, d.err }
func (d downStore) SetDisabled(string, bool) error                     { return d.err }
func (d downStore) Verify(string, string) (bool, error)                { return false, d.err }
func (d downStore) Set(string, string) error                           { return d.err }
func (d downStore) Remove(string) error                                { return d.err }
func (d downStore) Refresh() error                                     { return nil }
func (d downStore) Lookup(string, time.Time) (*Token, error)           { return nil, d.err }
func (d downStore) Create(NewToken, time.Time) (string, *Token, error) { return "", nil, d.err }
func (d downStore) Revoke(string) (*Token, error)                      { return nil, d.err }

type downTokens struct{ downStore }

func (d downTokens) List(string) ([]*Token, error) { return nil, d.err }
func (d downTokens) Use(string, time.Time) error   { return d.err }
func (d downTokens) Touch(string, time.Time) error { return d.err }

func TestStoreFailuresAreUnavailableNotBadCredentials(t *testing.T) {
	down := downStore{err: errors.New("dial tcp 10.0.0.5:5432: connection refused")}
	s, err := New(Options{Users: down, Tokens: downTokens{down}})
	if err != nil {
		t.Fatal(err)
	}
	for _, header := range []string{"Bearer npmg_whatever", basic("api", "npmgk_x"), basic("alice", "correct horse")} {
		_, err := s.Authenticate(header, client)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnavailable", header, err)
		}
	}
	if _, err := s.Login("alice", "correct horse", client); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Login = %v, want ErrUnavailable", err)
	}
	if err := s.CheckPassword("alice", "correct horse", client); !errors.Is(err, ErrUnavailable) {
		t.Errorf("CheckPassword = %v, want ErrUnavailable", err)
	}
	// An outage is not a failed attempt: nobody is throttled afterwards.
	for range 10 {
		s.CheckPassword("alice", "x", client)
	}
	if s.userThrottle.blocked("alice\x00"+throttleKey(client), s.now()) > 0 || s.addrThrottle.blocked(throttleKey(client), s.now()) > 0 {
		t.Error("store failures counted as failed passwords")
	}
}

func TestUnavailable(t *testing.T) {
	other := errors.New("connection reset")
	tests := []struct {
		in          error
		unavailable bool
	}{
		{nil, false},
		{ErrNoUser, false},
		{ErrNoToken, false},
		{ValidatePassword("short"), false},
		{other, true},
	}
	for _, tt := range tests {
		got := Unavailable(tt.in)
		if errors.Is(got, ErrUnavailable) != tt.unavailable || (tt.in != nil && !errors.Is(got, tt.in)) {
			t.Errorf("Unavailable(%v) = %v", tt.in, got)
		}
	}
}

func TestStoresFromOptionsReplaceFiles(t *testing.T) {
	dir := t.TempDir()
	users, _ := OpenUsers(filepath.Join(dir, "elsewhere.htpasswd"))
	s, err := New(Options{UsersFile: filepath.Join(dir, "users.htpasswd"), TokensFile: filepath.Join(dir, "tokens.json"), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Users.Set("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "users.htpasswd")); err == nil {
		t.Error("the users file was written although a store was given")
	}
	if _, ok := s.Tokens.(*Tokens); !ok {
		t.Errorf("tokens store %T, want the file", s.Tokens)
	}
}

func TestFindKey(t *testing.T) {
	a := &Token{Key: "abcdef0123456789"}
	b := &Token{Key: "abcdef0199999999"}
	c := &Token{Key: "abcdef01"}
	all := []*Token{a, b, c}
	tests := []struct {
		key  string
		want *Token
	}{
		{"abcdef0123456789", a},
		{"abcdef012", a},
		{"abcdef01", c},  // an exact key wins over prefixes
		{"abcdef0", nil}, // too short
		{"abcdef019", b},
		{"abcdef01234567890", nil},
		{"0000000000", nil},
	}
	for _, tt := range tests {
		got, err := FindKey(tt.key, all)
		if got != tt.want || (tt.want == nil) != errors.Is(err, ErrNoToken) {
			t.Errorf("FindKey(%q) = %v, %v", tt.key, got, err)
		}
	}
	if _, err := FindKey("abcdef01", []*Token{a, b}); !errors.Is(err, ErrNoToken) {
		t.Errorf("ambiguous prefix: %v", err)
	}
}

func TestReadHtpasswd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	u, _ := OpenUsers(p)
	u.Set("zed", "password-z")
	u.Set("amy", "password-a")
	got, err := ReadHtpasswd(p)
	if err != nil || len(got) != 2 || got[0].Name != "zed" || got[1].Name != "amy" {
		t.Fatalf("ReadHtpasswd = %v, %v", got, err)
	}
	if !VerifyPassword(got[1].Hash, "password-a") || VerifyPassword(got[1].Hash, "password-z") {
		t.Error("hashes do not verify")
	}
}
