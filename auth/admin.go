package auth

import (
	"errors"
	"fmt"
)

// IsAdmin reports whether p may manage users (auth.admins). A credential
// narrowed to some feeds, or to reading, never does: narrowing a token
// must not leave it the power to lock everyone else out.
func (s *Service) IsAdmin(p *Principal) bool {
	return p != nil && !p.ReadOnly && len(p.Feeds) == 0 && len(p.Packages) == 0 && s.admins.allows(p)
}

// DisableUser disables a user: no password of theirs verifies, and every
// token, API key and web session of theirs is revoked (and refused, should
// one be made while this runs: byToken asks whether the user is
// disabled). It returns how many were revoked. The user's name stays
// taken, their packages keep them as a maintainer, and EnableUser undoes
// it, without the tokens.
func (s *Service) DisableUser(name string) (revoked int, err error) {
	if err := s.Users.SetDisabled(name, true); err != nil {
		return 0, Unavailable(err)
	}
	// Passwords checked a moment ago are remembered (verified): forget
	// them all, rather than search for the user's.
	s.verifiedMu.Lock()
	clear(s.verified)
	s.verifiedMu.Unlock()
	tokens, err := s.Tokens.List(name)
	if err != nil {
		return 0, fmt.Errorf("user %s is disabled, but listing their tokens failed: %w", name, Unavailable(err))
	}
	for _, tk := range tokens {
		if _, err := s.Tokens.Revoke(tk.Key); err != nil && !errors.Is(err, ErrNoToken) {
			return revoked, fmt.Errorf("user %s is disabled, but revoking their tokens failed: %w", name, Unavailable(err))
		}
		revoked++
	}
	return revoked, nil
}

// EnableUser lets a disabled user sign in again with their password.
func (s *Service) EnableUser(name string) error {
	return Unavailable(s.Users.SetDisabled(name, false))
}
