package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Options configure a Service.
type Options struct {
	UsersFile  string
	TokensFile string
	// Users and Tokens, when set, are used instead of the files (a
	// database that replicas share).
	Users       UserStore
	Tokens      TokenStore
	Groups      map[string][]string // group -> members
	AllowSignup bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service authenticates requests and manages credentials.
//
// When a store fails (rather than answering ErrNoUser or ErrNoToken), its
// methods return an error matching ErrUnavailable.
type Service struct {
	Users       UserStore
	Tokens      TokenStore
	groups      map[string][]string // user -> groups
	allowSignup bool
	now         func() time.Time

	// Failed passwords are throttled per user (5 a minute: guessing one
	// account) and per client address (30 a minute: a spray across
	// accounts, without locking out everyone behind one NAT after a few
	// typos).
	userThrottle, addrThrottle *throttle
	// verified remembers password checks that passed, so a client sending
	// Basic credentials on every request pays bcrypt once, not 400 times
	// per install. Keyed by a hash of name and password; entries expire.
	verifiedMu sync.Mutex
	verified   map[[32]byte]time.Time
	// bcrypt is CPU-heavy: a bounded number run at once.
	bcryptSem chan struct{}
}

// verifiedTTL bounds how long a changed password may keep working for a
// client that already used it.
const verifiedTTL = time.Minute

// New opens the user and token files, or uses the stores of o.
func New(o Options) (*Service, error) {
	users, tokens := o.Users, o.Tokens
	if users == nil {
		f, err := OpenUsers(o.UsersFile)
		if err != nil {
			return nil, err
		}
		users = f
	}
	if tokens == nil {
		f, err := OpenTokens(o.TokensFile)
		if err != nil {
			return nil, err
		}
		tokens = f
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &Service{
		Users: users, Tokens: tokens, groups: map[string][]string{}, allowSignup: o.AllowSignup, now: now,
		userThrottle: newThrottle(5, time.Minute), addrThrottle: newThrottle(30, time.Minute),
		verified:  map[[32]byte]time.Time{},
		bcryptSem: make(chan struct{}, 2),
	}
	for g, members := range o.Groups {
		for _, m := range members {
			s.groups[m] = append(s.groups[m], g)
		}
	}
	return s, nil
}

// Watch re-reads the user and token files every interval until ctx ends
// (database stores have nothing to re-read),
// so the CLI's changes (a new user, a revoked key) reach a running server.
func (s *Service) Watch(ctx context.Context, interval time.Duration, logErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, err := range []error{s.Users.Refresh(), s.Tokens.Refresh()} {
				if err != nil && logErr != nil {
					logErr(err)
				}
			}
		}
	}
}

// Authenticate reads an Authorization header value. An empty header is
// anonymous (nil, nil). Accepted forms, as npm, yarn and pnpm send them:
//
//   - Bearer TOKEN: a token from npm login or npm token create, or an API key;
//   - Basic base64(api:KEY): an API key, as ProGet's _auth;
//   - Basic base64(user:password): a user's password (username + _password,
//     yarn's npmAuthIdent), or a token in the password position.
func (s *Service) Authenticate(header string, client netip.Addr) (*Principal, error) {
	if header == "" {
		return nil, nil
	}
	scheme, cred, _ := strings.Cut(header, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "bearer":
		return s.byToken(cred)
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, fmt.Errorf("%w: malformed Basic credentials", ErrBadCredentials)
		}
		name, password, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("%w: malformed Basic credentials", ErrBadCredentials)
		}
		if name == "api" || LooksLikeSecret(password) {
			return s.byToken(password)
		}
		return s.byPassword(name, password, client)
	}
	return nil, fmt.Errorf("%w: unsupported Authorization scheme", ErrBadCredentials)
}

func (s *Service) byToken(secret string) (*Principal, error) {
	tk, err := s.Tokens.Lookup(secret, s.now())
	if errors.Is(err, ErrNoToken) {
		return nil, fmt.Errorf("%w: unknown, expired or revoked token", ErrBadCredentials)
	}
	if err != nil {
		return nil, Unavailable(err)
	}
	kind := KindToken
	if tk.Kind == "api-key" {
		kind = KindAPIKey
	}
	return &Principal{Name: tk.User, Groups: s.groups[tk.User], Kind: kind, ReadOnly: tk.ReadOnly, Feeds: tk.Feeds, TokenKey: tk.Key}, nil
}

func (s *Service) byPassword(name, password string, client netip.Addr) (*Principal, error) {
	p := &Principal{Name: name, Groups: s.groups[name], Kind: KindPassword}
	id := sha256.Sum256([]byte(name + "\x00" + password))
	now := s.now()
	s.verifiedMu.Lock()
	exp, ok := s.verified[id]
	s.verifiedMu.Unlock()
	if ok && now.Before(exp) {
		exists, err := s.Users.Exists(name)
		if err != nil {
			return nil, Unavailable(err)
		}
		if exists {
			return p, nil
		}
	}
	if err := s.CheckPassword(name, password, client); err != nil {
		return nil, err
	}
	s.verifiedMu.Lock()
	if len(s.verified) > 10000 { // bounded: drop everything rather than grow
		clear(s.verified)
	}
	s.verified[id] = now.Add(verifiedTTL)
	s.verifiedMu.Unlock()
	return p, nil
}

// CheckPassword verifies a password with throttling: after repeated
// failures for a user or from a client address, attempts are refused for
// a while without being checked.
func (s *Service) CheckPassword(name, password string, client netip.Addr) error {
	now := s.now()
	userKey, addrKey := name, client.String()
	if s.userThrottle.blocked(userKey, now) || s.addrThrottle.blocked(addrKey, now) {
		return fmt.Errorf("%w: try again later", ErrThrottled)
	}
	s.bcryptSem <- struct{}{}
	ok, err := s.Users.Verify(name, password)
	<-s.bcryptSem
	if err != nil {
		// Not a failed attempt: the store could not tell.
		return Unavailable(err)
	}
	if !ok {
		s.userThrottle.fail(userKey, now)
		s.addrThrottle.fail(addrKey, now)
		return fmt.Errorf("%w: bad user name or password", ErrBadCredentials)
	}
	s.userThrottle.reset(userKey)
	return nil
}

// Login is npm login and npm adduser (the CouchDB flow): it checks the
// password, or creates the user when sign-up is allowed, and returns a new
// token for the user.
func (s *Service) Login(name, password string, client netip.Addr) (string, error) {
	exists, err := s.Users.Exists(name)
	if err != nil {
		return "", Unavailable(err)
	}
	if !exists {
		if !s.allowSignup {
			// The same answer as a bad password: no user enumeration.
			if err := s.CheckPassword(name, password, client); errors.Is(err, ErrUnavailable) {
				return "", err
			}
			return "", fmt.Errorf("%w: bad user name or password", ErrBadCredentials)
		}
		if err := s.Users.Set(name, password); err != nil {
			return "", Unavailable(err) // ErrInvalid as it is
		}
	} else if err := s.CheckPassword(name, password, client); err != nil {
		return "", err
	}
	secret, _, err := s.Tokens.Create(NewToken{User: name, Name: "npm login"}, s.now())
	return secret, Unavailable(err)
}

// throttle counts failures per key in a fixed window.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	fails  map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newThrottle(limit int, d time.Duration) *throttle {
	return &throttle{limit: limit, window: d, fails: map[string]*window{}}
}

func (t *throttle) blocked(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.fails[key]
	return ok && now.Sub(w.start) < t.window && w.n >= t.limit
}

func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fails) > 100000 { // bounded under a spray of names
		for k, w := range t.fails {
			if now.Sub(w.start) >= t.window {
				delete(t.fails, k)
			}
		}
	}
	w, ok := t.fails[key]
	if !ok || now.Sub(w.start) >= t.window {
		t.fails[key] = &window{start: now, n: 1}
		return
	}
	w.n++
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.fails, key)
	t.mu.Unlock()
}
