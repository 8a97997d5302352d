package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"
)

// ErrTokenUsed: a token with MaxUses made them all (403).
var ErrTokenUsed = &limitError{msg: "token already used"}

// DefaultTokenTTL is the expiry of a new write token that asks for none;
// DefaultMaxTokenTTL the longest any new token may ask for.
const (
	DefaultTokenTTL    = 30 * 24 * time.Hour
	DefaultMaxTokenTTL = 90 * 24 * time.Hour
)

// lastUsedEvery bounds how often a token's LastUsed is stored.
const lastUsedEvery = time.Minute

// limitError is a request refused by a limit of the token it came with: a
// 403 (it matches ErrForbidden) whose message says which limit.
type limitError struct{ msg string }

func (e *limitError) Error() string        { return e.msg }
func (e *limitError) Is(target error) bool { return target == ErrForbidden }

// checkCIDRs refuses a token used from outside its address ranges.
func checkCIDRs(tk *Token, client netip.Addr) error {
	if len(tk.CIDRs) == 0 {
		return nil
	}
	client = client.Unmap()
	for _, c := range tk.CIDRs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(client) {
			return nil
		}
	}
	return &limitError{msg: fmt.Sprintf("token not valid from %s (cidr %s)", client, strings.Join(tk.CIDRs, ","))}
}

// MayWrite refuses a write to pkg by a credential limited to other
// packages. action is what npm was doing ("publish", "change the tags of").
func (p *Principal) MayWrite(action, pkg string) error {
	if p == nil || len(p.Packages) == 0 {
		return nil
	}
	for _, pat := range p.Packages {
		if ok, _ := path.Match(pat, pkg); ok || pat == pkg {
			return nil
		}
	}
	return &limitError{msg: fmt.Sprintf("token limited to packages %s: cannot %s %s", strings.Join(p.Packages, ","), action, pkg)}
}

// UseForWrite checks a write to pkg against the limits of the credential
// it came with, and counts it against the token's MaxUses.
func (s *Service) UseForWrite(p *Principal, action, pkg string) error {
	if err := p.MayWrite(action, pkg); err != nil {
		return err
	}
	if p == nil || p.MaxUses == 0 || p.TokenKey == "" {
		return nil
	}
	err := s.Tokens.Use(p.TokenKey, s.now())
	if errors.Is(err, ErrTokenUsed) || errors.Is(err, ErrNoToken) {
		return ErrTokenUsed
	}
	return Unavailable(err)
}

// touch stores that tk was used, at most once a lastUsedEvery per token.
// A store failing here does not fail the request: last use is advisory.
func (s *Service) touch(tk *Token, now time.Time) {
	if now.Sub(tk.LastUsed) < lastUsedEvery {
		return
	}
	s.touchMu.Lock()
	if len(s.touched) > 100000 { // bounded: forget rather than grow
		clear(s.touched)
	}
	last, ok := s.touched[tk.Key]
	if ok && now.Sub(last) < lastUsedEvery {
		s.touchMu.Unlock()
		return
	}
	s.touched[tk.Key] = now
	s.touchMu.Unlock()
	s.Tokens.Touch(tk.Key, now)
}

// TokenTTL is the expiry a new token gets when it asks for requested (0:
// none asked): a write token asking for none gets the default expiry,
// and nothing may ask for more than the maximum.
func (s *Service) TokenTTL(requested time.Duration, readOnly bool) (time.Duration, error) {
	switch {
	case requested < 0:
		return 0, fmt.Errorf("%w: a token's expiry must be in the future", ErrInvalid)
	case requested > s.maxTTL:
		return 0, fmt.Errorf("%w: tokens may expire in %d days at most (auth.tokens.max_ttl)", ErrInvalid, int(s.maxTTL.Hours()/24))
	case requested == 0 && !readOnly:
		return s.defaultTTL, nil
	}
	return requested, nil
}

// ValidateLimits checks the package patterns and address ranges of a
// token to create (ErrInvalid).
func ValidateLimits(packages, cidrs []string) error {
	for _, p := range packages {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("%w: %q is not a package name or pattern (left-pad, @acme/*)", ErrInvalid, p)
		}
	}
	for _, c := range cidrs {
		if _, err := netip.ParsePrefix(c); err != nil {
			return fmt.Errorf("%w: %q is not an address range (192.168.0.0/16)", ErrInvalid, c)
		}
	}
	return nil
}
