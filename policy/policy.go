// Package policy compiles the rules of a validated configuration, its
// filters and access lists, into the forms the server applies. It is the
// wiring between config, which holds the file as plain data, and filter
// and auth, which own the rules: an error names the file and the line of
// its key, as config's own errors do.
package policy

import (
	"fmt"
	"maps"
	"slices"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/trustpub"
)

// Rules are a configuration's compiled rules. A reload swaps them whole.
type Rules struct {
	// Connectors are the connectors' filters by name, each labelled
	// "connector NAME".
	Connectors map[string]*filter.Policy
	// Feeds are each feed's rules by name.
	Feeds map[string]*Feed
	// Metrics is metrics.access.
	Metrics auth.Rule
	// Admins is auth.admins: who manages users.
	Admins auth.Rule
	// Trusted are publishing.trusted, in order.
	Trusted []trustpub.Publisher
}

// Feed is one feed's rules.
type Feed struct {
	Access *auth.FeedAccess
	// Filter is the feed's own filter, labelled "feed NAME".
	Filter *filter.Policy
	// Connectors are the filters of the feed's connectors, in the feed's
	// order.
	Connectors []*filter.Policy
}

// Load reads and validates a file and compiles its rules.
func Load(path string) (*config.Config, *Rules, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	r, err := Compile(c)
	if err != nil {
		return nil, nil, err
	}
	return c, r, nil
}

// Parse reads and validates a document, as config.Parse does, and
// compiles its rules; file names it in errors.
func Parse(data []byte, file string) (*config.Config, *Rules, error) {
	c, err := config.Parse(data, file)
	if err != nil {
		return nil, nil, err
	}
	r, err := Compile(c)
	if err != nil {
		return nil, nil, err
	}
	return c, r, nil
}

// Compile checks and compiles the rules of c, which config validated:
// metrics.access, the connectors' filters, the groups' members, then each
// feed's access lists and filter, the order in which config always
// reported their errors. Names are taken in sorted order, so that a file
// with several errors always reports the same one.
func Compile(c *config.Config) (*Rules, error) {
	r := &Rules{Connectors: map[string]*filter.Policy{}, Feeds: map[string]*Feed{}}
	var err error
	if r.Metrics, err = auth.CompileRule(c.Metrics.Access); err != nil {
		return nil, c.At(fmt.Sprintf("metrics.access: %v", err), "metrics", "access")
	}
	if r.Admins, err = auth.CompileRule(c.Auth.Admins); err != nil {
		return nil, c.At(fmt.Sprintf("auth.admins: %v", err), "auth", "admins")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Connectors)) {
		p, err := compileFilter(c, &c.Connectors[name].Filter, "connectors", name)
		if err != nil {
			return nil, err
		}
		r.Connectors[name] = p.WithLabel("connector " + name)
	}
	if err := checkGroups(c); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(c.Feeds)) {
		f, err := compileFeed(c, name, r.Connectors)
		if err != nil {
			return nil, err
		}
		r.Feeds[name] = f
	}
	if r.Trusted, err = compileTrusted(c); err != nil {
		return nil, err
	}
	return r, nil
}

// checkGroups checks that the groups' members are user names.
func checkGroups(c *config.Config) error {
	for _, g := range slices.Sorted(maps.Keys(c.Auth.Groups)) {
		for _, m := range c.Auth.Groups[g] {
			if err := auth.ValidateUserName(m); err != nil {
				return c.At(fmt.Sprintf("auth.groups.%s: %v", g, err), "auth", "groups", g)
			}
		}
	}
	return nil
}

// compileFeed compiles the feed called name; connectors are the compiled
// filters of every connector.
func compileFeed(c *config.Config, name string, connectors map[string]*filter.Policy) (*Feed, error) {
	fc := c.Feeds[name]
	a := &auth.FeedAccess{Feed: name}
	var err error
	if a.Read, err = auth.CompileRule(fc.Access.Read); err != nil {
		return nil, c.At(fmt.Sprintf("feeds.%s.access.read: %v", name, err), "feeds", name, "access", "read")
	}
	if a.Publish, err = auth.CompileRule(fc.Access.Publish); err != nil {
		return nil, c.At(fmt.Sprintf("feeds.%s.access.publish: %v", name, err), "feeds", name, "access", "publish")
	}
	p, err := compileFilter(c, &fc.Filter, "feeds", name)
	if err != nil {
		return nil, err
	}
	if a.Admin, err = auth.CompileRule(fc.Access.Admin); err != nil {
		return nil, c.At(fmt.Sprintf("feeds.%s.access.admin: %v", name, err), "feeds", name, "access", "admin")
	}
	f := &Feed{Access: a, Filter: p.WithLabel("feed " + name)}
	for _, cn := range fc.Connectors {
		f.Connectors = append(f.Connectors, connectors[cn])
	}
	return f, nil
}
