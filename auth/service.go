package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
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
	// DefaultTTL is the expiry of new write tokens that ask for none
	// (0: DefaultTokenTTL); MaxTTL caps what any new token may ask for
	// (0: DefaultMaxTokenTTL). Read-only tokens may keep no expiry.
	DefaultTTL, MaxTTL time.Duration
	// TwoFactorFile keeps the users' second factors (TwoFactor); "" is
	// none, unless TwoFactorStore is set (a database), which is used
	// instead.
	TwoFactorFile  string
	TwoFactorStore TwoFactorStore
	// Admins may list, disable and enable users (auth.admins).
	Admins Rule
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
	admins      Rule
	// lookupChecksUsers: Tokens.Lookup refuses disabled users' tokens
	// itself (UserAwareTokens).
	lookupChecksUsers bool

	// Failed passwords are throttled per user and client address (5 a
	// minute: guessing one account, without letting an attacker elsewhere
	// lock the user out) and per client address across users (30 a
	// minute: a spray across accounts, without locking out everyone
	// behind one NAT after a few typos).
	userThrottle, addrThrottle *throttle
	// verified remembers password checks that passed, so a client sending
	// Basic credentials on every request pays bcrypt once, not 400 times
	// per install. Keyed by a hash of name and password; entries expire.
	verifiedMu sync.Mutex
	verified   map[[32]byte]time.Time
	// bcrypt is CPU-heavy: a bounded number run at once, at most one per
	// client address runs or waits (more from that address are refused at
	// once rather than queued), and at most maxBcryptQueued wait. A spray
	// from many connections then delays another address's login by a
	// bounded queue, not by the spray's length.
	bcryptSem     chan struct{}
	checkMu       sync.Mutex
	checking      map[string]bool // client address keys with a check running or waiting
	bcryptCalls   int             // comparisons started, for tests
	bcryptWaiting int             // checks waiting for a slot
	sameChecks    singleflight.Group

	defaultTTL, maxTTL time.Duration
	// TwoFactor is the users' second factors; nil when none is kept.
	TwoFactor *TwoFactor
	// touched remembers when each token's LastUsed was last stored, so
	// it is written at most once a minute per token (lastUsedEvery).
	touchMu sync.Mutex
	touched map[string]time.Time
}

// maxBcryptQueued bounds the password checks waiting for a bcrypt slot:
// about a second of work at 50 ms a comparison on two cores.
const maxBcryptQueued = 32

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
		verified:   map[[32]byte]time.Time{},
		bcryptSem:  make(chan struct{}, max(2, runtime.NumCPU())),
		checking:   map[string]bool{},
		touched:    map[string]time.Time{},
		defaultTTL: min(cmp.Or(o.DefaultTTL, DefaultTokenTTL), cmp.Or(o.MaxTTL, DefaultMaxTokenTTL)), maxTTL: cmp.Or(o.MaxTTL, DefaultMaxTokenTTL),
		admins: o.Admins,
	}
	_, s.lookupChecksUsers = tokens.(UserAwareTokens)
	switch {
	case o.TwoFactorStore != nil:
		s.TwoFactor = NewTwoFactor(o.TwoFactorStore)
	case o.TwoFactorFile != "":
		s.TwoFactor = OpenTwoFactor(o.TwoFactorFile)
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
		return s.byToken(cred, client)
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
			return s.byToken(password, client)
		}
		return s.byPassword(name, password, client)
	}
	return nil, fmt.Errorf("%w: unsupported Authorization scheme", ErrBadCredentials)
}

func (s *Service) byToken(secret string, client netip.Addr) (*Principal, error) {
	now := s.now()
	tk, err := s.Tokens.Lookup(secret, now)
	if errors.Is(err, ErrNoToken) || (err == nil && tk.Kind == SessionKind) {
		// A session is the web UI's cookie, not a credential for npm.
		return nil, fmt.Errorf("%w: unknown, expired or revoked token", ErrBadCredentials)
	}
	if err != nil {
		return nil, Unavailable(err)
	}
	if err := s.refuseDisabled(tk); err != nil {
		return nil, err
	}
	if err := checkCIDRs(tk, client); err != nil {
		return nil, err
	}
	s.touch(tk, now)
	kind := KindToken
	if tk.Kind == "api-key" {
		kind = KindAPIKey
	}
	return &Principal{Name: tk.User, Groups: s.groups[tk.User], Kind: kind, ReadOnly: tk.ReadOnly, Feeds: tk.Feeds, TokenKey: tk.Key,
		Packages: tk.Packages, MaxUses: tk.MaxUses, Automation: tk.Automation}, nil
}

func (s *Service) byPassword(name, password string, client netip.Addr) (*Principal, error) {
	p := &Principal{Name: name, Groups: s.groups[name], Kind: KindPassword}
	id := sha256.Sum256([]byte(name + "\x00" + password))
	now := s.now()
	s.verifiedMu.Lock()
	exp, ok := s.verified[id]
	s.verifiedMu.Unlock()
	if ok && now.Before(exp) {
		// The password was right a moment ago; the user may have been
		// removed or disabled since, here or by another process.
		disabled, err := s.Users.Disabled(name)
		if err != nil && !errors.Is(err, ErrNoUser) {
			return nil, Unavailable(err)
		}
		if err == nil && !disabled {
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

// refuseDisabled refuses a token whose user is disabled (a token acting
// as no user, an API key's name, is not refused for that).
func (s *Service) refuseDisabled(tk *Token) error {
	if s.lookupChecksUsers {
		return nil
	}
	disabled, err := s.Users.Disabled(tk.User)
	switch {
	case errors.Is(err, ErrNoUser):
		return nil
	case err != nil:
		return Unavailable(err)
	case disabled:
		return fmt.Errorf("%w: unknown, expired or revoked token", ErrBadCredentials)
	}
	return nil
}

// CheckPassword verifies a password with throttling: after repeated
// failures for a user from a client address, or from an address across
// users, attempts are refused for a while without being checked; so is
// an attempt while another from the same address is being checked, or
// while the queue of checks is full.
func (s *Service) CheckPassword(name, password string, client netip.Addr) error {
	// Concurrent checks of the same credentials from one address (npm's
	// first parallel requests with Basic credentials) share one: they are
	// not a spray, and must not be refused as one.
	id := sha256.Sum256([]byte(name + "\x00" + password + "\x00" + throttleKey(client)))
	_, err, _ := s.sameChecks.Do(string(id[:]), func() (any, error) {
		return nil, s.checkPassword(name, password, client)
	})
	return err
}

func (s *Service) checkPassword(name, password string, client netip.Addr) error {
	now := s.now()
	addrKey := throttleKey(client)
	userKey := name + "\x00" + addrKey
	if wait := max(s.userThrottle.blocked(userKey, now), s.addrThrottle.blocked(addrKey, now)); wait > 0 {
		return &throttledError{msg: "too many failed logins from this address", after: wait}
	}
	if err := s.enterCheck(addrKey); err != nil {
		return err
	}
	s.bcryptSem <- struct{}{}
	s.checkMu.Lock()
	s.bcryptWaiting--
	s.bcryptCalls++
	s.checkMu.Unlock()
	ok, err := s.Users.Verify(name, password)
	<-s.bcryptSem
	s.checkMu.Lock()
	delete(s.checking, addrKey)
	s.checkMu.Unlock()
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

// enterCheck admits a password check from a client address: one at a
// time per address, and a bounded queue in all.
func (s *Service) enterCheck(addrKey string) error {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	switch {
	case s.checking[addrKey]:
		return &throttledError{msg: "a password check from this address is already running", after: time.Second}
	case s.bcryptWaiting >= maxBcryptQueued:
		return &throttledError{msg: "too many password checks in progress", after: time.Second}
	}
	s.checking[addrKey] = true
	s.bcryptWaiting++
	return nil
}

// throttleKey is the client address as throttles count it: an IPv6
// client is its /64, since one host commonly holds a whole /64.
func throttleKey(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

// throttledError is ErrThrottled with when to try again.
type throttledError struct {
	msg   string
	after time.Duration
}

func (e *throttledError) Error() string {
	return fmt.Sprintf("%s: try again in %s", e.msg, retrySeconds(e.after).String())
}

func (e *throttledError) Is(target error) bool { return target == ErrThrottled }

// retrySeconds rounds up to whole seconds, as Retry-After counts.
func retrySeconds(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

// RetryAfter is how long a client refused with ErrThrottled should wait
// (at least a second); 0 for other errors.
func RetryAfter(err error) time.Duration {
	var te *throttledError
	if errors.As(err, &te) {
		return retrySeconds(te.after)
	}
	return 0
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
			// A throttled attempt is a 429 for an unknown name as for a
			// known one.
			if err := s.CheckPassword(name, password, client); errors.Is(err, ErrUnavailable) || errors.Is(err, ErrThrottled) {
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

// blocked returns how long key stays refused; 0 when it is not.
func (t *throttle) blocked(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.fails[key]
	if !ok || w.n < t.limit {
		return 0
	}
	return max(0, w.start.Add(t.window).Sub(now))
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
