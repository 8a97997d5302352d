package auth

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrNoToken is returned for a secret or key the store does not have (or
// whose token expired).
var ErrNoToken = errors.New("no such token")

// Token is a stored token or API key. The secret itself is never stored:
// Key is the hex sha512 of it (what npm token list shows as "key").
type Token struct {
	Key      string    `json:"key"`
	Prefix   string    `json:"prefix"` // the secret's first characters, to recognise it in lists
	User     string    `json:"user"`
	Kind     string    `json:"kind"` // "token" or "api-key"
	Name     string    `json:"name,omitempty"`
	ReadOnly bool      `json:"readonly"`
	Feeds    []string  `json:"feeds,omitempty"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`

	// Limits of granular tokens (limits.go); the zero values limit
	// nothing, so tokens stored before them keep working as they did.
	Packages   []string  `json:"packages,omitempty"` // names or patterns ("@acme/*") it may write
	CIDRs      []string  `json:"cidrs,omitempty"`    // client address ranges it is good from
	MaxUses    int       `json:"max_uses,omitempty"` // writes it may make; 0 unlimited
	Uses       int       `json:"uses,omitempty"`     // writes it made (counted when MaxUses > 0)
	Automation bool      `json:"automation,omitempty"`
	LastUsed   time.Time `json:"last_used,omitzero"`
}

// Expired reports whether the token is past its expiry.
func (t *Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// Tokens is the store of tokens and API keys: one JSON file, written
// atomically, re-read when another process (the CLI) changed it. It is a
// TokenStore.
type Tokens struct {
	path  string
	file  *fileReloader
	mu    sync.RWMutex
	byKey map[string]*Token
	// updateMu serializes updates (update).
	updateMu sync.Mutex

	// A secret not found may have been created by the CLI since the last
	// reload: the file is looked at again before answering no. Misses
	// join one round of reloading that starts after they arrived, and
	// rounds start a few times a second at most, so unknown secrets
	// cannot make the server re-read the file on every request.
	missMu    sync.Mutex
	next      *reloadRound // the round new misses join; it has not looked yet
	missLimit *rate.Limiter
	rounds    int // rounds started, for tests
}

// reloadRound is one re-read for the misses waiting on done.
type reloadRound struct{ done chan struct{} }

// missReloads is how often a lookup miss may re-read the file.
const missReloads = 5 // a second

// Secret prefixes say what a secret is when it shows up somewhere it
// should not (secret scanners can match them).
const (
	tokenPrefix  = "npmg_"
	apiKeyPrefix = "npmgk_"
)

// OpenTokens reads the store; a missing file is an empty store.
func OpenTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path, file: &fileReloader{path: path}, byKey: map[string]*Token{}, missLimit: rate.NewLimiter(missReloads, 1)}
	return t, t.reload(true)
}

// Refresh re-reads the file if it changed.
func (t *Tokens) Refresh() error { return t.reload(false) }

func (t *Tokens) reload(force bool) error { return t.file.load(force, t.apply) }

// apply takes the file's contents as the tokens.
func (t *Tokens) apply(data []byte, found bool) error {
	var list []*Token
	if found {
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("%s: %w", t.path, err)
		}
	}
	byKey := make(map[string]*Token, len(list))
	for _, tk := range list {
		byKey[tk.Key] = tk
	}
	t.mu.Lock()
	t.byKey = byKey
	t.mu.Unlock()
	return nil
}

// LooksLikeSecret reports whether s is a token or API key secret (rather
// than a key), by its prefix.
func LooksLikeSecret(s string) bool {
	return strings.HasPrefix(s, tokenPrefix) || strings.HasPrefix(s, apiKeyPrefix)
}

// KeyOf is the stored key of a secret.
func KeyOf(secret string) string {
	sum := sha512.Sum512([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Lookup finds the token for a secret. The secret is hashed and the hash
// looked up, so no comparison runs over the secret itself.
func (t *Tokens) Lookup(secret string, now time.Time) (*Token, error) {
	if !LooksLikeSecret(secret) {
		return nil, ErrNoToken
	}
	key := KeyOf(secret)
	t.mu.RLock()
	tk, ok := t.byKey[key]
	t.mu.RUnlock()
	if !ok {
		tk, ok = t.lookupAgain(key)
	}
	if !ok || tk.Expired(now) {
		return nil, ErrNoToken
	}
	return tk, nil
}

// lookupAgain waits for a re-read of the file that starts after the call
// (within the rate limit: at most 1/missReloads seconds) and looks key up
// again.
func (t *Tokens) lookupAgain(key string) (*Token, bool) {
	t.missMu.Lock()
	r := t.next
	if r == nil {
		r = &reloadRound{done: make(chan struct{})}
		t.next = r
		t.rounds++
		delay := t.missLimit.Reserve().Delay()
		go func() {
			time.Sleep(delay)
			t.missMu.Lock()
			t.next = nil // misses from now on need a later look
			t.missMu.Unlock()
			t.reload(false) // an error leaves the old list, as Watch does
			close(r.done)
		}()
	}
	t.missMu.Unlock()
	<-r.done
	t.mu.RLock()
	defer t.mu.RUnlock()
	tk, ok := t.byKey[key]
	return tk, ok
}

// NewToken describes a token or key to create.
type NewToken struct {
	User     string
	APIKey   bool
	Name     string
	ReadOnly bool
	Feeds    []string
	TTL      time.Duration // 0: never expires
	// Limits (see Token).
	Packages   []string
	CIDRs      []string
	MaxUses    int
	Automation bool
	// Session makes a web UI session (kind "session"): good in the
	// UI's cookie only, never as an Authorization header.
	Session bool
}

// ExpiredKept is how long a store keeps a token past its expiry (listed
// as expired) before deleting it as it makes new ones: web sessions and
// trusted publishing's five-minute tokens would otherwise pile up, one per
// sign-in and per CI publish, in a file rewritten on every change.
const ExpiredKept = 24 * time.Hour

// Create makes a new token and returns its secret, which is shown once;
// tokens expired for ExpiredKept go.
func (t *Tokens) Create(n NewToken, now time.Time) (string, *Token, error) {
	secret, tk := NewSecret(n, now)
	err := t.update(func(m map[string]*Token) error {
		for k, old := range m {
			if old.Expired(now.Add(-ExpiredKept)) {
				delete(m, k)
			}
		}
		m[tk.Key] = tk
		return nil
	})
	return secret, tk, err
}

// Use counts a write made with the token of key: ErrTokenUsed when it
// has made its MaxUses already. It runs under the store's write lock, so
// of two concurrent uses of a one-use token one fails.
func (t *Tokens) Use(key string, now time.Time) error {
	return t.update(func(m map[string]*Token) error {
		tk, ok := m[key]
		if !ok {
			return ErrNoToken
		}
		if tk.MaxUses > 0 && tk.Uses >= tk.MaxUses {
			return ErrTokenUsed
		}
		c := *tk
		c.Uses++
		c.LastUsed = now.UTC().Truncate(time.Second)
		m[key] = &c
		return nil
	})
}

// Touch records that the token of key was used now.
func (t *Tokens) Touch(key string, now time.Time) error {
	return t.update(func(m map[string]*Token) error {
		tk, ok := m[key]
		if !ok {
			return ErrNoToken
		}
		c := *tk
		c.LastUsed = now.UTC().Truncate(time.Second)
		m[key] = &c
		return nil
	})
}

// Revoke deletes a token by key (or by a unique key prefix of at least
// 8 characters, as npm token revoke allows: FindKey).
func (t *Tokens) Revoke(key string) (*Token, error) {
	var gone *Token
	err := t.update(func(m map[string]*Token) error {
		tk, err := FindKey(key, slices.Collect(maps.Values(m)))
		if err != nil {
			return err
		}
		delete(m, tk.Key)
		gone = tk
		return nil
	})
	return gone, err
}

// List returns the tokens of a user ("" for all), oldest first, as the
// file has them now: a token the CLI just created is listed (and may be
// revoked) at once, as it may be used at once.
func (t *Tokens) List(user string) ([]*Token, error) {
	if err := t.reload(false); err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []*Token
	for _, tk := range t.byKey {
		if user == "" || tk.User == user {
			out = append(out, tk)
		}
	}
	slices.SortFunc(out, func(a, b *Token) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}

func (t *Tokens) update(change func(map[string]*Token) error) error {
	// One update at a time, from the re-read on: an update re-reading
	// the file while another writes it would write back what it read,
	// and undo the other (a use of a one-use token counted twice).
	t.updateMu.Lock()
	defer t.updateMu.Unlock()
	return t.file.update(t.apply, func() error {
		t.mu.Lock()
		defer t.mu.Unlock()
		m := make(map[string]*Token, len(t.byKey)+1)
		for k, v := range t.byKey {
			m[k] = v
		}
		if err := change(m); err != nil {
			return err
		}
		list := make([]*Token, 0, len(m))
		for _, tk := range m {
			list = append(list, tk)
		}
		slices.SortFunc(list, func(a, b *Token) int { return strings.Compare(a.Key, b.Key) })
		data, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(t.path, data, 0o600); err != nil {
			return err
		}
		t.byKey = m
		return nil
	})
}

// writeFileAtomic replaces path with data: temporary file in the same
// directory, fsync, rename, directory fsync.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
