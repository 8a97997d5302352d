// Package auth says who is asking and what they may do: users (bcrypt, in
// an htpasswd file), tokens from npm login and npm token, API keys as ProGet
// has them, and per-feed read and publish rights. It knows no HTTP
// framework: the front end hands it header values and gets principals and
// sentinel errors back.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors the front end maps to statuses.
var (
	// ErrUnauthenticated: no credentials, and the action needs some (401).
	ErrUnauthenticated = errors.New("authentication required")
	// ErrBadCredentials: credentials were sent and are wrong, expired or
	// revoked (401).
	ErrBadCredentials = errors.New("bad credentials")
	// ErrForbidden: authenticated, but without the right (403).
	ErrForbidden = errors.New("forbidden")
	// ErrThrottled: too many failed attempts (429).
	ErrThrottled = errors.New("too many failed attempts")
)

// Kind is how a principal authenticated.
type Kind int

// Kinds of credentials.
const (
	KindPassword Kind = iota + 1
	KindToken
	KindAPIKey
)

func (k Kind) String() string {
	switch k {
	case KindPassword:
		return "password"
	case KindToken:
		return "token"
	case KindAPIKey:
		return "api-key"
	}
	return "none"
}

// Principal is an authenticated caller. A nil *Principal is anonymous.
type Principal struct {
	Name   string
	Groups []string
	Kind   Kind
	// ReadOnly credentials can never publish.
	ReadOnly bool
	// Feeds, when not empty, are the only feeds the credential is good for.
	Feeds []string
	// TokenKey identifies the token or key used, for revocation.
	TokenKey string
	// Packages, when not empty, are the only packages (names or
	// patterns) the credential may write; MaxUses > 0 counts its writes
	// (UseForWrite). Automation credentials skip two-factor checks.
	Packages   []string
	MaxUses    int
	Automation bool
}

// Action is what a request does on a feed.
type Action int

// Actions.
const (
	Read Action = iota + 1
	Publish
	// Admin is changing any local package of the feed, whoever maintains
	// it, and publishing over a connector's name.
	Admin
)

func (a Action) String() string {
	switch a {
	case Publish:
		return "publish"
	case Admin:
		return "administer"
	}
	return "read"
}

// Subjects with a special meaning in access lists.
const (
	// Everyone, with or without credentials.
	SubjectAnonymous = "$anonymous"
	SubjectAll       = "$all"
	// Anyone who authenticated.
	SubjectAuthenticated = "$authenticated"
)

// Rule is one access list: who may do an action. Entries are
// $anonymous/$all, $authenticated, user names and group names.
type Rule struct {
	anyone        bool
	authenticated bool
	names         []string
}

// CompileRule checks an access list.
func CompileRule(entries []string) (Rule, error) {
	var r Rule
	for _, e := range entries {
		switch {
		case e == SubjectAnonymous || e == SubjectAll:
			r.anyone = true
		case e == SubjectAuthenticated:
			r.authenticated = true
		case strings.HasPrefix(e, "$"):
			return Rule{}, fmt.Errorf("unknown subject %q (use $anonymous, $authenticated, a user or a group)", e)
		case e == "" || strings.ContainsAny(e, ": \t"):
			return Rule{}, fmt.Errorf("invalid user or group name %q", e)
		default:
			r.names = append(r.names, e)
		}
	}
	return r, nil
}

// Anonymous reports whether the rule lets anyone in.
func (r Rule) Anonymous() bool { return r.anyone }

func (r Rule) allows(p *Principal) bool {
	if r.anyone {
		return true
	}
	if p == nil {
		return false
	}
	if r.authenticated || slices.Contains(r.names, p.Name) {
		return true
	}
	for _, g := range p.Groups {
		if slices.Contains(r.names, g) {
			return true
		}
	}
	return false
}

// Allows reports whether the rule lets p (nil: anonymous) in, for rights
// that are not a feed's (metrics.access).
func (r Rule) Allows(p *Principal) bool { return r.allows(p) }

// FeedAccess is a feed's rights.
type FeedAccess struct {
	Feed    string
	Read    Rule
	Publish Rule
	Admin   Rule
}

// Check decides whether p may do act on the feed. It returns nil,
// ErrUnauthenticated (anonymous and not allowed) or ErrForbidden.
func (a *FeedAccess) Check(p *Principal, act Action) error {
	rule := a.Read
	switch act {
	case Publish:
		rule = a.Publish
	case Admin:
		rule = a.Admin
	}
	if p != nil {
		if len(p.Feeds) > 0 && !slices.Contains(p.Feeds, a.Feed) {
			return fmt.Errorf("%w: this %s is not valid for feed %q", ErrForbidden, p.Kind, a.Feed)
		}
		if act != Read && p.ReadOnly {
			return fmt.Errorf("%w: this %s is read-only", ErrForbidden, p.Kind)
		}
	}
	if rule.allows(p) {
		return nil
	}
	if p == nil {
		return fmt.Errorf("%w: %s on feed %q needs credentials", ErrUnauthenticated, act, a.Feed)
	}
	return fmt.Errorf("%w: %s may not %s on feed %q", ErrForbidden, p.Name, act, a.Feed)
}
