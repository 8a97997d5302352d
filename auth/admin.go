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
	// A password remembered as checked (verified) needs no forgetting:
	// byPassword asks whether the user is disabled before it trusts one.
	if err := s.Users.SetDisabled(name, true); err != nil {
		return 0, Unavailable(err)
	}
	tokens, err := s.Tokens.List(name)
	if err != nil {
		return 0, fmt.Errorf("user %s is disabled, but listing their tokens failed: %w", name, Unavailable(err))
	}
	for _, tk := range tokens {
		_, err := s.Tokens.Revoke(tk.Key)
		switch {
		case errors.Is(err, ErrNoToken): // revoked meanwhile, by someone else
		case err != nil:
			return revoked, fmt.Errorf("user %s is disabled, but revoking their tokens failed: %w", name, Unavailable(err))
		default:
			revoked++
		}
	}
	return revoked, nil
}

// EnableUser lets a disabled user sign in again with their password.
func (s *Service) EnableUser(name string) error {
	return Unavailable(s.Users.SetDisabled(name, false))
}
