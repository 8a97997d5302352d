package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// replaceKeepingStamp renames a file with content over path and gives it
// path's old modification time: what a tool that rewrites the file
// within one mtime tick, to the same size, leaves behind.
func replaceKeepingStamp(t *testing.T, path string, content []byte) {
	t.Helper()
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(content)) != old.Size() {
		t.Fatalf("test content is %d bytes, the file %d", len(content), old.Size())
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRefreshSeesAFileReplacedWithTheSameSizeAndTime: both file stores
// notice a file renamed over theirs even when its size and mtime match
// the old one's (the inode tells them apart).
func TestRefreshSeesAFileReplacedWithTheSameSizeAndTime(t *testing.T) {
	hash, err := HashPassword("alice", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	tokensOf := func(user string) []byte {
		_, tk := NewSecret(NewToken{User: user}, time.Unix(1e9, 0))
		b, err := json.Marshal([]*Token{tk})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name        string
		first, then []byte
		open        func(path string) (func() error, func() []string, error)
		want        string
	}{
		{
			name: "htpasswd users", want: "bobby",
			first: []byte("alice:" + string(hash) + "\n"), then: []byte("bobby:" + string(hash) + "\n"),
			open: func(path string) (func() error, func() []string, error) {
				u, err := OpenUsers(path)
				if err != nil {
					return nil, nil, err
				}
				return u.Refresh, func() []string {
					l, _ := u.List()
					names := make([]string, len(l))
					for i, ui := range l {
						names[i] = ui.Name
					}
					return names
				}, nil
			},
		},
		{
			name: "tokens", want: "bobby",
			first: tokensOf("alice"), then: tokensOf("bobby"),
			open: func(path string) (func() error, func() []string, error) {
				tk, err := OpenTokens(path)
				if err != nil {
					return nil, nil, err
				}
				users := func() []string {
					tk.mu.RLock()
					defer tk.mu.RUnlock()
					var out []string
					for _, t := range tk.byKey {
						out = append(out, t.User)
					}
					return out
				}
				return tk.Refresh, users, nil
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(path, c.first, 0o600); err != nil {
				t.Fatal(err)
			}
			refresh, users, err := c.open(path)
			if err != nil {
				t.Fatal(err)
			}
			replaceKeepingStamp(t, path, c.then)
			if err := refresh(); err != nil {
				t.Fatal(err)
			}
			if got := users(); len(got) != 1 || got[0] != c.want {
				t.Errorf("after the file was replaced: users %q, want [%s]", got, c.want)
			}
		})
	}
}

// TestFirstTokenSurvivesAConcurrentReload: a reload that finds no file
// yet (the watch of a new data directory) must not apply "no tokens"
// over the first token, written meanwhile: the token was lost so, and the
// file, unchanged since, was never read again (a trusted-publishing token
// refused 3 ms after it was made).
func TestFirstTokenSurvivesAConcurrentReload(t *testing.T) {
	for i := range 50 {
		tokens, err := OpenTokens(filepath.Join(t.TempDir(), "auth", "tokens.json"))
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					tokens.Refresh()
				}
			}
		}()
		secret, _, err := tokens.Create(NewToken{User: "ci"}, time.Now())
		close(stop)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.Lookup(secret, time.Now()); err != nil {
			t.Fatalf("round %d: the first token, just made, is unknown: %v", i, err)
		}
	}
}
