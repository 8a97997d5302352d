package auth

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAuthenticateToken is the cost credentials add to a request
// that carries an npm token (the file stores, as one server has them).
func BenchmarkAuthenticateToken(b *testing.B) {
	dir := b.TempDir()
	s, err := New(Options{UsersFile: filepath.Join(dir, "users.htpasswd"), TokensFile: filepath.Join(dir, "tokens.json")})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Users.Set("alice", "correct horse"); err != nil {
		b.Fatal(err)
	}
	tok, _, err := s.Tokens.Create(NewToken{User: "alice"}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	header := "Bearer " + tok
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(header, client); err != nil {
			b.Fatal(err)
		}
	}
}
