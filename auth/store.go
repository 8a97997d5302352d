package auth

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// UserStore keeps users and their bcrypt password hashes: the htpasswd
// file (Users), or a database shared by replicas.
//
// A disabled user keeps their name (it cannot be registered again) but no
// password of theirs verifies, and the Service refuses their tokens. Both
// stores mark it as htpasswd locks an account: the hash with a "!" in
// front, so a disabled user's file still reads as htpasswd, and a
// database needs no new column.
type UserStore interface {
	Exists(name string) (bool, error)
	// List returns the users (file order, or name order).
	List() ([]UserInfo, error)
	// Verify checks a password; an unknown or disabled user is false, nil.
	Verify(name, password string) (bool, error)
	// Set adds a user or changes a password (ValidateUserName and
	// ValidatePassword rules; errors matching ErrInvalid). A disabled
	// user stays disabled.
	Set(name, password string) error
	Remove(name string) error // ErrNoUser when missing
	// Disabled reports whether a user is disabled: ErrNoUser when there
	// is no such user.
	Disabled(name string) (bool, error)
	// SetDisabled disables or enables a user: ErrNoUser when missing.
	SetDisabled(name string, disabled bool) error
	Refresh() error // re-read a changed file; a database store returns nil
}

// UserInfo is a user as List returns them.
type UserInfo struct {
	Name     string
	Disabled bool
}

// lockMark is put before a disabled user's hash (htpasswd's convention
// for a locked account).
const lockMark = "!"

// lock returns the stored form of a hash: marked when disabled.
func lock(hash []byte, disabled bool) []byte {
	h := unlocked(hash)
	if disabled {
		return append([]byte(lockMark), h...)
	}
	return h
}

// unlocked is a stored hash without its lock mark.
func unlocked(hash []byte) []byte { return bytes.TrimPrefix(hash, []byte(lockMark)) }

// isLocked reports whether a stored hash is a disabled user's.
func isLocked(hash []byte) bool { return bytes.HasPrefix(hash, []byte(lockMark)) }

// TokenStore keeps tokens and API keys (hashed; never the secret): the
// JSON file (Tokens), or a database shared by replicas.
type TokenStore interface {
	// Lookup finds the token of a secret: ErrNoToken when unknown, expired
	// or revoked.
	Lookup(secret string, now time.Time) (*Token, error)
	// Create makes a token (NewSecret) and returns its secret, shown once.
	Create(n NewToken, now time.Time) (string, *Token, error)
	// Revoke deletes a token by key or unique key prefix (FindKey rules).
	Revoke(key string) (*Token, error)
	// List returns the tokens of a user ("" for all), oldest first.
	List(user string) ([]*Token, error)
	Refresh() error
	// Use counts a write by the token of key and sets its LastUsed:
	// ErrTokenUsed when it made its MaxUses already, atomically (of two
	// concurrent uses of a one-use token, one fails).
	Use(key string, now time.Time) error
	// Touch sets the LastUsed of the token of key.
	Touch(key string, now time.Time) error
}

// UserAwareTokens is a TokenStore whose Lookup already answers ErrNoToken
// for the tokens of disabled users (a database asks both in one query), so
// the Service need not ask the UserStore again on every request.
type UserAwareTokens interface {
	TokenStore
	LookupRefusesDisabled()
}

// ErrUnavailable: the user or token store failed (a database that cannot
// be reached): the front end answers 503, not 401, since the credentials
// may well be good.
var ErrUnavailable = errors.New("credential store unavailable")

// ErrInvalid matches the errors of ValidateUserName and ValidatePassword:
// a name or password that can never be stored (400).
var ErrInvalid = errors.New("invalid user name or password")

type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// Unavailable wraps a store error in ErrUnavailable, except the answers a
// working store gives (ErrNoUser, ErrNoToken, ErrInvalid), which it returns
// as they are, as it does nil.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, ErrNoUser) || errors.Is(err, ErrNoToken) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// bcryptCost is the cost of new hashes: about 50 ms on a current core,
// which is what makes a stolen file slow to attack.
const bcryptCost = 10

// ValidateUserName checks a name for a new user.
func ValidateUserName(name string) error {
	if name == "" || len(name) > 64 {
		return invalidError("a user name has 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return invalidError(fmt.Sprintf("user name %q: use letters, digits, '-', '_' and '.'", name))
		}
	}
	if name == "api" {
		return invalidError(`"api" is reserved: it is the user name of API keys`)
	}
	return nil
}

// ValidatePassword checks a new password (bcrypt reads at most 72 bytes).
func ValidatePassword(password string) error {
	if len(password) < 8 || len(password) > 72 {
		return invalidError("a password has 8 to 72 characters")
	}
	return nil
}

// HashPassword checks a new user's name and password and returns the
// bcrypt hash to store, in the htpasswd format ($2a$10$...).
func HashPassword(name, password string) ([]byte, error) {
	if err := ValidateUserName(name); err != nil {
		return nil, err
	}
	if err := ValidatePassword(password); err != nil {
		return nil, err
	}
	return bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
}

// VerifyPassword compares a password with a stored hash, in constant
// time. A nil hash (no such user) costs the same as a real one, so timing
// does not tell which names exist; so does a disabled user's, which never
// verifies.
func VerifyPassword(hash []byte, password string) bool {
	if hash == nil {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	ok := bcrypt.CompareHashAndPassword(unlocked(hash), []byte(password)) == nil
	return ok && !isLocked(hash)
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("npmgate-dummy"), bcryptCost)

// CheckHash accepts the hashes a user store holds: bcrypt only, locked
// (disabled) or not.
func CheckHash(hash []byte) error {
	_, err := bcrypt.Cost(unlocked(hash))
	return err
}

// NewSecret makes the secret of a new token or API key and the Token to
// store for it (which holds the secret's hash, never the secret).
func NewSecret(n NewToken, now time.Time) (string, *Token) {
	prefix := tokenPrefix
	kind := "token"
	if n.APIKey {
		prefix, kind = apiKeyPrefix, "api-key"
	}
	if n.Session {
		kind = SessionKind
	}
	secret := prefix + rand.Text() + rand.Text()
	tk := &Token{
		Key: KeyOf(secret), Prefix: secret[:len(prefix)+4], User: n.User, Kind: kind, Name: n.Name,
		ReadOnly: n.ReadOnly, Feeds: n.Feeds, Created: now.UTC().Truncate(time.Second),
		Packages: n.Packages, CIDRs: n.CIDRs, MaxUses: n.MaxUses, Automation: n.Automation,
	}
	if n.TTL > 0 {
		tk.Expires = tk.Created.Add(n.TTL)
	}
	return secret, tk
}

// MinKeyPrefix is the shortest key prefix Revoke accepts.
const MinKeyPrefix = 8

// FindKey picks the token that key names among candidates: the one whose
// key is key, else the only one whose key starts with key, if key has at
// least MinKeyPrefix characters (as npm token revoke allows). Errors match
// ErrNoToken. A store may pass only the candidates whose key starts with
// key.
func FindKey(key string, candidates []*Token) (*Token, error) {
	var found *Token
	n := 0
	for _, tk := range candidates {
		if tk.Key == key {
			return tk, nil
		}
		if strings.HasPrefix(tk.Key, key) {
			found = tk
			n++
		}
	}
	switch {
	case len(key) < MinKeyPrefix || n == 0:
		return nil, fmt.Errorf("%w: %q", ErrNoToken, key)
	case n > 1:
		return nil, fmt.Errorf("%w: %q matches several tokens", ErrNoToken, key)
	}
	return found, nil
}

// The file stores.
var (
	_ UserStore  = (*Users)(nil)
	_ TokenStore = (*Tokens)(nil)
)
