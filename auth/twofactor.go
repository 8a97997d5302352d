package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// ErrOTPRequired: the write needs a one-time password from the user's
// authenticator (401 with WWW-Authenticate: OTP, which makes npm ask for
// one, or fail with EOTP when it cannot ask).
var ErrOTPRequired = errors.New("one-time password required")

// errNeeds2FA refuses a person's write to a feed that requires a second
// factor they have not enrolled (403).
var errNeeds2FA = &limitError{msg: "this feed requires two-factor authentication for publishers: enable two-factor authentication first: npm profile enable-2fa auth-and-writes (or an admin: npmgate user 2fa enable NAME)"}

// otpError is ErrOTPRequired with what was wrong.
type otpError struct{ msg string }

func (e *otpError) Error() string        { return e.msg }
func (e *otpError) Is(target error) bool { return target == ErrOTPRequired }

// TOTP as RFC 6238 has it, with the parameters authenticator apps
// assume: SHA-1, 6 digits, 30-second steps; a code of the step before or
// after is accepted for clock drift.
const (
	totpStep   = 30 // seconds
	totpDigits = 6
	// recoveryCodes is how many recovery codes enrolment prints.
	recoveryCodes = 8
)

// twoFactorUser is a user's second factor as stored: the TOTP secret
// (base32), the sha256 of each unused recovery code, and the last step a
// code was accepted for (a code is good once).
type twoFactorUser struct {
	Secret   string   `json:"secret"`
	Recovery []string `json:"recovery"`
	LastStep int64    `json:"last_step"`
	// Pending: npm profile enable-2fa started, and no code confirmed
	// it yet; the user is not enrolled until one does.
	Pending bool `json:"pending,omitempty"`
}

// TwoFactorStore keeps each user's second factor as a record it does not
// read (twoFactorUser as JSON): the JSON file beside the htpasswd file,
// which has no room for it (OpenTwoFactor), or the database replicas
// share, so that an enrolment made through one replica is asked for by
// every other.
type TwoFactorStore interface {
	// Get is user's record; nil when they have none.
	Get(user string) ([]byte, error)
	// Update applies change to user's record (nil: none) and stores what
	// it returns (nil: delete), with no other Update of user between the
	// read and the write, whatever the process. An error of change is
	// returned, and nothing is stored.
	Update(user string, change func(old []byte) ([]byte, error)) error
}

// TwoFactor is the users' second factors, on a TwoFactorStore. The store
// is read on every check: writes needing a code are rare, and the CLI
// changes it.
type TwoFactor struct {
	store TwoFactorStore
}

// NewTwoFactor keeps the second factors in store.
func NewTwoFactor(store TwoFactorStore) *TwoFactor { return &TwoFactor{store: store} }

// OpenTwoFactor keeps them in the JSON file at path, mode 0600 (missing:
// nobody enrolled).
func OpenTwoFactor(path string) *TwoFactor { return NewTwoFactor(&twoFactorFile{path: path}) }

// errUnchanged ends an update that changes nothing, without a write.
var errUnchanged = errors.New("unchanged")

func (f *TwoFactor) get(user string) (*twoFactorUser, error) {
	b, err := f.store.Get(user)
	if err != nil || b == nil {
		return nil, err
	}
	var u twoFactorUser
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("second factor of %q: %w", user, err)
	}
	return &u, nil
}

// update applies change to user's record (nil: none); it stores what
// change returns (nil: delete) when changed is true, and nothing else.
func (f *TwoFactor) update(user string, change func(u *twoFactorUser) (next *twoFactorUser, changed bool, err error)) error {
	err := f.store.Update(user, func(old []byte) ([]byte, error) {
		var u *twoFactorUser
		if old != nil {
			u = &twoFactorUser{}
			if err := json.Unmarshal(old, u); err != nil {
				return nil, fmt.Errorf("second factor of %q: %w", user, err)
			}
		}
		next, changed, err := change(u)
		switch {
		case err != nil:
			return nil, err
		case !changed:
			return nil, errUnchanged
		case next == nil:
			return nil, nil
		}
		return json.Marshal(next)
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

// Enabled reports whether user has a second factor.
func (f *TwoFactor) Enabled(user string) (bool, error) {
	u, err := f.get(user)
	return u != nil && !u.Pending, err
}

// Pending reports whether user started enrolling (Begin) and has not
// confirmed it.
func (f *TwoFactor) Pending(user string) (bool, error) {
	u, err := f.get(user)
	return u != nil && u.Pending, err
}

// Begin starts npm profile enable-2fa: a new secret, pending until
// Confirm; it returns the otpauth:// URI. An enrolled user's factor is
// not replaced (ErrInvalid): they disable it first.
func (f *TwoFactor) Begin(user, issuer string) (uri string, err error) {
	err = f.update(user, func(u *twoFactorUser) (*twoFactorUser, bool, error) {
		if u != nil && !u.Pending {
			return nil, false, fmt.Errorf("%w: two-factor authentication is enabled already; disable it first", ErrInvalid)
		}
		next := &twoFactorUser{Secret: newTOTPSecret(), Pending: true}
		uri = otpauthURI(issuer, user, next.Secret)
		return next, true, nil
	})
	if err != nil {
		return "", err
	}
	return uri, nil
}

// Confirm ends a pending enrolment with a code of the new secret and
// returns the recovery codes, shown once; ok is false for a wrong code.
func (f *TwoFactor) Confirm(user, code string, now time.Time) (codes []string, ok bool, err error) {
	err = f.update(user, func(u *twoFactorUser) (*twoFactorUser, bool, error) {
		if u == nil || !u.Pending {
			return u, false, nil
		}
		key, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(u.Secret)
		step := now.Unix() / totpStep
		for _, s := range []int64{step - 1, step, step + 1} {
			if subtle.ConstantTimeCompare([]byte(totp(key, s)), []byte(strings.TrimSpace(code))) == 1 {
				u.LastStep, u.Pending = s, false
				codes, u.Recovery = newRecoveryCodes()
				ok = true
				return u, true, nil
			}
		}
		return u, false, nil
	})
	if err != nil {
		return nil, false, err
	}
	return codes, ok, nil
}

func newTOTPSecret() string {
	key := make([]byte, 20)
	rand.Read(key)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(key)
}

func newRecoveryCodes() (codes, hashes []string) {
	for range recoveryCodes {
		c := strings.ToLower(rand.Text()[:16])
		codes = append(codes, c)
		hashes = append(hashes, hashCode(c))
	}
	return codes, hashes
}

func otpauthURI(issuer, user, secret string) string {
	q := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + url.PathEscape(issuer+":"+user) + "?" + q.Encode()
}

// Enable gives user a new TOTP secret and recovery codes (replacing any
// they had) and returns the otpauth:// URI for an authenticator app and
// the codes, which are shown once.
func (f *TwoFactor) Enable(user, issuer string) (uri string, codes []string, err error) {
	next := &twoFactorUser{Secret: newTOTPSecret()}
	codes, next.Recovery = newRecoveryCodes()
	if err := f.update(user, func(*twoFactorUser) (*twoFactorUser, bool, error) { return next, true, nil }); err != nil {
		return "", nil, err
	}
	return otpauthURI(issuer, user, next.Secret), codes, nil
}

// Disable removes user's second factor: ErrNoUser when there was none.
func (f *TwoFactor) Disable(user string) error {
	return f.update(user, func(u *twoFactorUser) (*twoFactorUser, bool, error) {
		if u == nil {
			return nil, false, ErrNoUser
		}
		return nil, true, nil
	})
}

// verify checks a code of user: a TOTP code not used before (within a
// step of now), or an unused recovery code, which is then spent. ok is
// false for a wrong or replayed code; enrolled false when user has no
// second factor. Of two checks of one code at once, on any replica, one
// passes: the store's Update runs one at a time per user.
func (f *TwoFactor) verify(user, code string, now time.Time) (ok, enrolled bool, err error) {
	err = f.update(user, func(u *twoFactorUser) (*twoFactorUser, bool, error) {
		if u == nil || u.Pending {
			return u, false, nil
		}
		enrolled = true
		code = strings.TrimSpace(code)
		step := now.Unix() / totpStep
		key, kerr := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(u.Secret)
		if kerr == nil && len(code) == totpDigits {
			for _, s := range []int64{step - 1, step, step + 1} {
				if s > u.LastStep && subtle.ConstantTimeCompare([]byte(totp(key, s)), []byte(code)) == 1 {
					u.LastStep, ok = s, true
					return u, true, nil
				}
			}
		}
		h := hashCode(strings.ToLower(code))
		for i, r := range u.Recovery {
			if subtle.ConstantTimeCompare([]byte(r), []byte(h)) == 1 {
				u.Recovery, ok = append(u.Recovery[:i:i], u.Recovery[i+1:]...), true
				return u, true, nil
			}
		}
		return u, false, nil
	})
	if err != nil {
		return false, false, err
	}
	return ok, enrolled, nil
}

// twoFactorFile is the JSON file of the users' records, by name.
type twoFactorFile struct {
	path string
	mu   sync.Mutex
}

func (f *twoFactorFile) read() (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return m, nil
}

// Get reads the file: the CLI may have changed it.
func (f *twoFactorFile) Get(user string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return nil, err
	}
	return m[user], nil
}

// Update rewrites the file atomically. (The lock is this process's: the
// CLI and a server change the file rarely and never at once for one
// user.)
func (f *twoFactorFile) Update(user string, change func([]byte) ([]byte, error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return err
	}
	next, err := change(m[user])
	if err != nil {
		return err
	}
	if next == nil {
		delete(m, user)
	} else {
		m[user] = next
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(f.path, b, 0o600)
}

// totp is the code of key for a time step (RFC 6238 over RFC 4226).
func totp(key []byte, step int64) string {
	mac := hmac.New(sha1.New, key)
	binary.Write(mac, binary.BigEndian, step)
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", totpDigits, v%1000000)
}

// TOTPCode is the current code of an otpauth:// secret (for tests and
// the CLI's check).
func TOTPCode(secret string, now time.Time) (string, error) {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret))
	if err != nil {
		return "", err
	}
	return totp(key, now.Unix()/totpStep), nil
}

func hashCode(c string) string {
	s := sha256.Sum256([]byte(c))
	return hex.EncodeToString(s[:])
}

// CheckOTP is the second factor of a write by p: nothing for anonymous
// callers, automation tokens and users without a second factor; else
// otp must be a good code. Failures count against the login throttle of
// the user and address, so codes cannot be guessed faster than passwords.
//
// With require (a feed's require_2fa), a person without a second factor
// is refused.
func (s *Service) CheckOTP(p *Principal, otp string, client netip.Addr, require bool) error {
	if p == nil || p.Automation || p.Kind == KindAPIKey {
		return nil
	}
	if s.TwoFactor == nil {
		if require {
			return errNeeds2FA
		}
		return nil
	}
	now := s.now()
	userKey := p.Name + "\x00otp\x00" + throttleKey(client)
	if wait := s.userThrottle.blocked(userKey, now); wait > 0 {
		return &throttledError{msg: "too many wrong one-time passwords from this address", after: wait}
	}
	if otp == "" {
		enrolled, err := s.TwoFactor.Enabled(p.Name)
		if err != nil {
			return Unavailable(err)
		}
		if !enrolled {
			if require {
				return errNeeds2FA
			}
			return nil
		}
		return &otpError{msg: "this write needs a one-time password from your authenticator (npm --otp=CODE)"}
	}
	ok, enrolled, err := s.TwoFactor.verify(p.Name, otp, now)
	switch {
	case err != nil:
		return Unavailable(err)
	case !enrolled && require:
		return errNeeds2FA
	case !enrolled || ok:
		return nil
	}
	s.userThrottle.fail(userKey, now)
	return &otpError{msg: "wrong or already used one-time password"}
}
