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

// TwoFactor keeps the users' second factors in one JSON file (0600) beside
// the htpasswd file, which has no room for them. It is read on every
// check: writes needing a code are rare, and the CLI changes it.
type TwoFactor struct {
	path string
	mu   sync.Mutex
}

// OpenTwoFactor is the store in path (missing: nobody enrolled).
func OpenTwoFactor(path string) *TwoFactor { return &TwoFactor{path: path} }

func (f *TwoFactor) read() (map[string]*twoFactorUser, error) {
	m := map[string]*twoFactorUser{}
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

func (f *TwoFactor) write(m map[string]*twoFactorUser) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(f.path, b, 0o600)
}

// Enabled reports whether user has a second factor.
func (f *TwoFactor) Enabled(user string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return false, err
	}
	return m[user] != nil && !m[user].Pending, nil
}

// Pending reports whether user started enrolling (Begin) and has not
// confirmed it.
func (f *TwoFactor) Pending(user string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return false, err
	}
	return m[user] != nil && m[user].Pending, nil
}

// Begin starts npm profile enable-2fa: a new secret, pending until
// Confirm; it returns the otpauth:// URI. An enrolled user's factor is
// not replaced (ErrInvalid): they disable it first.
func (f *TwoFactor) Begin(user, issuer string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return "", err
	}
	if u := m[user]; u != nil && !u.Pending {
		return "", fmt.Errorf("%w: two-factor authentication is enabled already; disable it first", ErrInvalid)
	}
	u := &twoFactorUser{Secret: newTOTPSecret(), Pending: true}
	m[user] = u
	if err := f.write(m); err != nil {
		return "", err
	}
	return otpauthURI(issuer, user, u.Secret), nil
}

// Confirm ends a pending enrolment with a code of the new secret and
// returns the recovery codes, shown once; ok is false for a wrong code.
func (f *TwoFactor) Confirm(user, code string, now time.Time) (codes []string, ok bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil || m[user] == nil || !m[user].Pending {
		return nil, false, err
	}
	u := m[user]
	key, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(u.Secret)
	step := now.Unix() / totpStep
	for _, s := range []int64{step - 1, step, step + 1} {
		if subtle.ConstantTimeCompare([]byte(totp(key, s)), []byte(strings.TrimSpace(code))) == 1 {
			u.LastStep, u.Pending = s, false
			codes, u.Recovery = newRecoveryCodes()
			return codes, true, f.write(m)
		}
	}
	return nil, false, nil
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
	u := &twoFactorUser{Secret: newTOTPSecret()}
	codes, u.Recovery = newRecoveryCodes()
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return "", nil, err
	}
	m[user] = u
	if err := f.write(m); err != nil {
		return "", nil, err
	}
	return otpauthURI(issuer, user, u.Secret), codes, nil
}

// Disable removes user's second factor: ErrNoUser when there was none.
func (f *TwoFactor) Disable(user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return err
	}
	if m[user] == nil {
		return ErrNoUser
	}
	delete(m, user)
	return f.write(m)
}

// verify checks a code of user: a TOTP code not used before (within a
// step of now), or an unused recovery code, which is then spent. ok is
// false for a wrong or replayed code; enrolled false when user has no
// second factor.
func (f *TwoFactor) verify(user, code string, now time.Time) (ok, enrolled bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil || m[user] == nil || m[user].Pending {
		return false, false, err
	}
	u := m[user]
	code = strings.TrimSpace(code)
	step := now.Unix() / totpStep
	key, kerr := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(u.Secret)
	if kerr == nil && len(code) == totpDigits {
		for _, s := range []int64{step - 1, step, step + 1} {
			if s > u.LastStep && subtle.ConstantTimeCompare([]byte(totp(key, s)), []byte(code)) == 1 {
				u.LastStep = s
				return true, true, f.write(m)
			}
		}
	}
	h := hashCode(strings.ToLower(code))
	for i, r := range u.Recovery {
		if subtle.ConstantTimeCompare([]byte(r), []byte(h)) == 1 {
			u.Recovery = append(u.Recovery[:i:i], u.Recovery[i+1:]...)
			return true, true, f.write(m)
		}
	}
	return false, true, nil
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
