package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/filter"
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
	// URL, or "off". Default: the feed's first connector.
	Audit string `yaml:"audit"`
	// Filter applies to every connector package of the feed, after the
	// connector's own filter.
	Filter *filter.Spec   `yaml:"filter"`
	Policy *filter.Policy `yaml:"-"`
	// OwnedNames claims names ("acme-tool") and prefixes ("acme-*") for
	// the feed as OwnedScopes claims scopes: they are never requested
	// from a connector, and publishing them needs no admin.
	OwnedNames []string `yaml:"owned_names"`
}

// Access lists who may read a feed and who may publish to it. Entries are
// $anonymous (anyone), $authenticated, user names and group names.
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

func (f *Feed) setDefaults() {
	if f.Access.Read == nil {
		f.Access.Read = []string{auth.SubjectAnonymous}
	}
	if f.Access.Publish == nil {
		f.Access.Publish = []string{auth.SubjectAuthenticated}
	}
}

// validate checks the feed called name, whose connectors must be among
// connectors, and compiles its filter into Policy.
func (f *Feed) validate(name string, connectors map[string]*Connector, at atFunc) error {
	if !nameRE.MatchString(name) || name == "-" {
		return at(fmt.Sprintf("feed name %q: use lower-case letters, digits, '-', '_' and '.'", name), "feeds", name)
	}
	for _, step := range []func(string, map[string]*Connector, atFunc) error{
		f.validateAccess, f.validateFilter, f.validateAudit, f.validateNames, f.validateConnectors,
	} {
		if err := step(name, connectors, at); err != nil {
			return err
		}
	}
	return nil
}

// validateAccess checks the read and publish lists. (The admin list is
// checked with the names, as it always was.)
func (f *Feed) validateAccess(name string, _ map[string]*Connector, at atFunc) error {
	if _, err := auth.CompileRule(f.Access.Read); err != nil {
		return at(fmt.Sprintf("feeds.%s.access.read: %v", name, err), "feeds", name, "access", "read")
	}
	if _, err := auth.CompileRule(f.Access.Publish); err != nil {
		return at(fmt.Sprintf("feeds.%s.access.publish: %v", name, err), "feeds", name, "access", "publish")
	}
	return nil
}

func (f *Feed) validateFilter(name string, _ map[string]*Connector, at atFunc) error {
	p, err := filter.Compile(f.Filter)
	if err != nil {
		return at(fmt.Sprintf("feeds.%s.filter: %v", name, err), "feeds", name, "filter")
	}
	f.Policy = p.WithLabel("feed " + name)
	return nil
}

func (f *Feed) validateAudit(name string, connectors map[string]*Connector, at atFunc) error {
	switch {
	case f.Audit == "" || f.Audit == "off" || connectors[f.Audit] != nil:
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
// merge patterns, its admins, owned names.
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
	if _, err := auth.CompileRule(f.Access.Admin); err != nil {
		return at(fmt.Sprintf("feeds.%s.access.admin: %v", name, err), "feeds", name, "access", "admin")
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
