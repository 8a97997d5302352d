package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// SessionKind is the kind of the tokens behind web UI sessions. They live
// in the token store like every token, so replicas share them and
// signing out (revoking) ends them everywhere.
const SessionKind = "session"

// SignIn checks a password (with the login throttle) and opens a web UI
// session for the user: a short-lived token of kind "session", whose
// secret is the session cookie.
func (s *Service) SignIn(name, password string, client netip.Addr, ttl time.Duration) (string, error) {
	if err := s.CheckPassword(name, password, client); err != nil {
		return "", err
	}
	secret, _, err := s.Tokens.Create(NewToken{User: name, Name: "web UI session", Session: true, TTL: ttl}, s.now())
	return secret, Unavailable(err)
}

// BySession is the principal of a session cookie's secret: only a token
// of kind "session" is one.
func (s *Service) BySession(secret string) (*Principal, error) {
	tk, err := s.Tokens.Lookup(secret, s.now())
	if errors.Is(err, ErrNoToken) || (err == nil && tk.Kind != SessionKind) {
		return nil, fmt.Errorf("%w: the session is over; sign in again", ErrBadCredentials)
	}
	if err != nil {
		return nil, Unavailable(err)
	}
	if err := s.refuseDisabled(tk); errors.Is(err, ErrBadCredentials) {
		return nil, fmt.Errorf("%w: the session is over; sign in again", ErrBadCredentials)
	} else if err != nil {
		return nil, err
	}
	return &Principal{Name: tk.User, Groups: s.groups[tk.User], Kind: KindToken, TokenKey: tk.Key}, nil
}

// SignOut revokes a session.
func (s *Service) SignOut(secret string) error {
	_, err := s.Tokens.Revoke(KeyOf(secret))
	if errors.Is(err, ErrNoToken) {
		return nil
	}
	return Unavailable(err)
}

// CSRFToken is the token the web UI's forms carry for a session: an HMAC
// keyed by the session's secret, which only the session's browser knows
// (the cookie is HttpOnly), so another site cannot forge it; replicas
// compute the same one without sharing a key.
func CSRFToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("npmgate web UI form"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether a form's token is the session's.
func CheckCSRF(secret, token string) bool {
	return secret != "" && hmac.Equal([]byte(CSRFToken(secret)), []byte(token))
}
