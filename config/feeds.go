package config

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Feed is one registry served at /npm/{name}/.
type Feed struct {
	Default    bool     `yaml:"default"`
	Connectors []string `yaml:"connectors"`
	Access     Access   `yaml:"access"`
	// OwnedScopes are scopes ("@acme") whose names are never requested
	// from any connector: only local packages exist there.
	OwnedScopes []string `yaml:"owned_scopes"`
	// Merge lists names ("name", "@scope/*", "prefix*") whose local and
	// connector versions are mixed, local versions winning a clash. Any
	// other name with local versions is local-only.
	Merge []string `yaml:"merge"`
	// Audit is where npm audit requests go: a connector name, an http(s)
	// URL, "off", or "local" / "local+connector" (answered from the OSV
	// database, see OSV). Default: the feed's first connector.
	Audit string `yaml:"audit"`
	// Filter applies to every connector package of the feed, after the
	// connector's own filter: a filter.Spec as written, compiled by the
	// policy package.
	Filter yaml.Node `yaml:"filter"`
	// OwnedNames claims names ("acme-tool") and prefixes ("acme-*") for
	// the feed as OwnedScopes claims scopes: they are never requested
	// from a connector, and publishing them needs no admin.
	OwnedNames []string `yaml:"owned_names"`
	// Require2FA refuses writes by people (passwords, tokens that are
	// not automation tokens) who have no second factor enrolled.
	Require2FA bool `yaml:"require_2fa"`
}

// Access lists who may read a feed and who may publish to it. Entries are
// $anonymous (anyone), $authenticated, user names and group names; the
// policy package checks and compiles them.
type Access struct {
	Read    []string `yaml:"read"`
	Publish []string `yaml:"publish"`
	// Admin may change every local package of the feed (publish, tags,
	// deprecate, unpublish, owners) whoever maintains it, and publish a
	// name a connector serves. Default: nobody.
	Admin []string `yaml:"admin"`
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	scopeRE = regexp.MustCompile(`^@[a-z0-9-~][a-z0-9-._~]*$`)
	// ownedNameRE is a package name, or a prefix of one ending in *.
	ownedNameRE = regexp.MustCompile(`^(@[a-z0-9-~][a-z0-9-._~]*/(\*|[a-z0-9-~][a-z0-9-._~]*\*?)|[a-z0-9-~][a-z0-9-._~]*\*?)$`)
)

// The subjects of the default access lists, as auth spells them
// (auth.SubjectAnonymous, auth.SubjectAuthenticated; a test holds them
// equal): config is plain data and does not import auth.
const (
	subjectAnonymous     = "$anonymous"
	subjectAuthenticated = "$authenticated"
)

func (f *Feed) setDefaults() {
	if f.Access.Read == nil {
		f.Access.Read = []string{subjectAnonymous}
	}
	if f.Access.Publish == nil {
		f.Access.Publish = []string{subjectAuthenticated}
	}
}

// validate checks the feed called name, whose connectors must be among
// connectors. (Its access lists and filter are checked where they are
// compiled, by the policy package.)
func (f *Feed) validate(name string, connectors map[string]*Connector, at atFunc) error {
	if !nameRE.MatchString(name) || name == "-" {
		return at(fmt.Sprintf("feed name %q: use lower-case letters, digits, '-', '_' and '.'", name), "feeds", name)
	}
	for _, step := range []func(string, map[string]*Connector, atFunc) error{
		f.validateAudit, f.validateNames, f.validateConnectors,
	} {
		if err := step(name, connectors, at); err != nil {
			return err
		}
	}
	return nil
}

func (f *Feed) validateAudit(name string, connectors map[string]*Connector, at atFunc) error {
	switch {
	case f.Audit == "" || f.Audit == "off" || connectors[f.Audit] != nil:
	case f.Audit == AuditLocal || f.Audit == AuditLocalConnector: // see validateOSV
	case strings.HasPrefix(f.Audit, "http://") || strings.HasPrefix(f.Audit, "https://"):
		u, err := CheckBaseURL(f.Audit)
		if err != nil {
			return at(fmt.Sprintf("feeds.%s.audit: %v", name, err), "feeds", name, "audit")
		}
		f.Audit = u
	default:
		return at(fmt.Sprintf("feeds.%s.audit: %q is not a connector, an http(s) URL or off", name, RedactURL(f.Audit)), "feeds", name, "audit")
	}
	return nil
}

// validateNames checks the names the feed claims or mixes: owned scopes,
// merge patterns, owned names.
func (f *Feed) validateNames(name string, _ map[string]*Connector, at atFunc) error {
	for i, sc := range f.OwnedScopes {
		if !scopeRE.MatchString(sc) {
			return at(fmt.Sprintf("feeds.%s.owned_scopes[%d]: %q is not a scope like @acme", name, i, sc), "feeds", name, "owned_scopes")
		}
	}
	for i, m := range f.Merge {
		if m == "" || strings.Count(m, "*") > 1 || (strings.Contains(m, "*") && !strings.HasSuffix(m, "*")) {
			return at(fmt.Sprintf("feeds.%s.merge[%d]: %q: use a name, @scope/* or prefix*", name, i, m), "feeds", name, "merge")
		}
	}
	for i, n := range f.OwnedNames {
		if !ownedNameRE.MatchString(n) {
			return at(fmt.Sprintf("feeds.%s.owned_names[%d]: %q: use a package name or a prefix ending in * (acme-tool, acme-*)", name, i, n), "feeds", name, "owned_names")
		}
	}
	return nil
}

// validateConnectors checks that the feed's connectors exist, each listed
// once.
func (f *Feed) validateConnectors(name string, connectors map[string]*Connector, at atFunc) error {
	seen := map[string]bool{}
	for _, cn := range f.Connectors {
		if connectors[cn] == nil {
			return at(fmt.Sprintf("feeds.%s.connectors: no connector named %q", name, cn), "feeds", name, "connectors")
		}
		if seen[cn] {
			return at(fmt.Sprintf("feeds.%s.connectors: %q is listed twice", name, cn), "feeds", name, "connectors")
		}
		seen[cn] = true
	}
	return nil
}
