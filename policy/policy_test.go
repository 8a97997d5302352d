package policy

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/filter"
)

// TestRuleErrors pins the errors of the rules, word for word and with
// their line: the ones config reported when it compiled them, in the
// order it checked them (metrics, connectors, groups, then each feed's
// read, publish, filter and admin lists).
func TestRuleErrors(t *testing.T) {
	const feed = "feeds:\n  f: {}\n"
	const conn = "connectors:\n  a:\n    url: http://x\n"
	tests := []struct {
		name, doc string
		line      int
		err       string
	}{
		{"metrics access", "metrics:\n  access: [$everyone]\n" + feed, 2, "f.yaml:2: metrics.access: unknown subject \"$everyone\" (use $anonymous, $authenticated, a user or a group)"},
		{"connector filter", conn + "    filter:\n      block: [lodash]\n" + feed, 4, "f.yaml:4: connectors.a.filter: block[0]: \"lodash\": want name@range, for example \"lodash@<4.17.21\" (or \"lodash@*\" for every version)"},
		{"connector filter unknown key", conn + "    filter:\n      blok: [x]\n" + feed, 5, "f.yaml:5: field blok not found in type filter.Spec"},
		{"connector filter bad duration", conn + "    filter:\n      min_release_age: soon\n" + feed, 5, "f.yaml:5: \"soon\" is not a duration: want for example 72h, 30m or 7d"},
		{"connector filter type", conn + "    filter:\n      include: 5\n" + feed, 5, "f.yaml:5: cannot unmarshal !!int `5` into []string"},
		{"connector filter licenses key", conn + "    filter:\n      licenses:\n        unknwon: block\n" + feed, 6, "f.yaml:6: field unknwon not found in type filter.LicenseSpec"},
		{"connector filter scalar", conn + "    filter: strict\n" + feed, 4, "f.yaml:4: cannot unmarshal !!str `strict` into filter.Spec"},
		{"connector filter first line first", conn + "    filter:\n      include: 5\n      bogus: 1\n" + feed, 5, "f.yaml:5: cannot unmarshal !!int `5` into []string"},
		{"connector filter duplicate", conn + "    filter:\n      exclude: [x]\n      exclude: [y]\n" + feed, 6, "f.yaml:6: mapping key \"exclude\" already defined at line 5"},
		{"group member", "auth:\n  groups:\n    ops: [\"bad name\"]\n" + feed, 3, "f.yaml:3: auth.groups.ops: user name \"bad name\": use letters, digits, '-', '_' and '.'"},
		{"feed read", "feeds:\n  f:\n    access:\n      read: [$everyone]\n", 4, "f.yaml:4: feeds.f.access.read: unknown subject \"$everyone\" (use $anonymous, $authenticated, a user or a group)"},
		{"feed publish", "feeds:\n  f:\n    access:\n      publish: [$everyone]\n", 4, "f.yaml:4: feeds.f.access.publish: unknown subject \"$everyone\" (use $anonymous, $authenticated, a user or a group)"},
		{"feed admin", "feeds:\n  f:\n    access:\n      admin: [$nobody]\n", 4, "f.yaml:4: feeds.f.access.admin: unknown subject \"$nobody\" (use $anonymous, $authenticated, a user or a group)"},
		{"feed filter", "feeds:\n  f:\n    filter:\n      deprecated: maybe\n", 3, "f.yaml:3: feeds.f.filter: deprecated: \"maybe\": want \"pass\" or \"hide\""},
		{"feed filter unknown key", "feeds:\n  f:\n    filter:\n      exclude: [x]\n      bogus: 1\n", 5, "f.yaml:5: field bogus not found in type filter.Spec"},
		{"feed filter merged", conn + "    filter: &f\n      exclude: [y]\nfeeds:\n  f:\n    filter:\n      <<: *f\n      bogus: 1\n", 10, "f.yaml:10: field bogus not found in type filter.Spec"},
		{"order metrics first", "metrics:\n  access: [$x]\n" + conn + "    filter:\n      deprecated: maybe\n" + feed, 2, "f.yaml:2: metrics.access: unknown subject \"$x\" (use $anonymous, $authenticated, a user or a group)"},
		{"order read before filter", "feeds:\n  f:\n    access:\n      read: [$x]\n    filter:\n      deprecated: maybe\n", 4, "f.yaml:4: feeds.f.access.read: unknown subject \"$x\" (use $anonymous, $authenticated, a user or a group)"},
		{"order filter before admin", "feeds:\n  f:\n    access:\n      admin: [$x]\n    filter:\n      deprecated: maybe\n", 5, "f.yaml:5: feeds.f.filter: deprecated: \"maybe\": want \"pass\" or \"hide\""},
		{"order connectors before groups", "auth:\n  groups:\n    ops: [\"bad name\"]\n" + conn + "    filter:\n      deprecated: maybe\n" + feed, 7, "f.yaml:7: connectors.a.filter: deprecated: \"maybe\": want \"pass\" or \"hide\""},
		{"order groups before feeds", "auth:\n  groups:\n    ops: [\"bad name\"]\nfeeds:\n  f:\n    access:\n      read: [$x]\n", 3, "f.yaml:3: auth.groups.ops: user name \"bad name\": use letters, digits, '-', '_' and '.'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.doc), "f.yaml")
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("%q: error %T %v is not *config.Error", tt.doc, err, err)
			}
			if ce.Line != tt.line || err.Error() != tt.err {
				t.Errorf("%q:\n got line %d %q\nwant line %d %q", tt.doc, ce.Line, err, tt.line, tt.err)
			}
		})
	}
}

func TestExampleFileIsValid(t *testing.T) {
	c, r, err := Load(filepath.Join("..", "npmgate.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Feeds) != len(c.Feeds) || len(r.Connectors) != len(c.Connectors) {
		t.Errorf("rules for %d feeds and %d connectors, the file has %d and %d", len(r.Feeds), len(r.Connectors), len(c.Feeds), len(c.Connectors))
	}
}

// TestRuleDefaults: every connector and feed has a policy, labelled with
// its name, and the default access lists compile to what they say.
func TestRuleDefaults(t *testing.T) {
	_, r, err := Parse([]byte("database:\n  url: postgres://db/npmgate\nstorage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: npmgate\n    prefix: /a/b/\nconnectors:\n  a:\n    url: http://x/\nfeeds:\n  f:\n    connectors: [a]\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := r.Feeds["f"]
	alice := &auth.Principal{Name: "alice"}
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"connectors.a.policy", r.Connectors["a"] != nil, true},
		{"feeds.f.policy", f.Filter != nil, true},
		{"feeds.f connectors", len(f.Connectors) == 1 && f.Connectors[0] == r.Connectors["a"], true},
		{"feeds.f.access.read anonymous", f.Access.Check(nil, auth.Read) == nil, true},
		{"feeds.f.access.publish anonymous", f.Access.Check(nil, auth.Publish) != nil, true},
		{"feeds.f.access.publish alice", f.Access.Check(alice, auth.Publish) == nil, true},
		{"feeds.f.access.admin alice", f.Access.Check(alice, auth.Admin) != nil, true},
		{"metrics.access anonymous", r.Metrics.Allows(nil), true},
		{"auth.admins: nobody", r.Admins.Allows(alice), false},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestFilterAsWritten: a filter is compiled from the file as written,
// anchors, aliases and merge keys included, each labelled with where it
// came from; an empty filter: key is no filter.
func TestFilterAsWritten(t *testing.T) {
	doc := "connectors:\n  a:\n    url: http://x\n    filter: &base\n      exclude: [left-pad]\n  b:\n    url: http://y\n    filter:\nfeeds:\n  f:\n    connectors: [a, b]\n    filter:\n      <<: *base\n      include: [\"@acme/*\", left-pad, ms]\n"
	_, r, err := Parse([]byte(doc), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := r.Feeds["f"]
	for _, tt := range []struct {
		policy, name, label string
		allowed             bool
	}{
		{"connector a", "left-pad", "connector a", false},
		{"connector a", "ms", "", true},
		{"connector b", "left-pad", "", true},
		{"feed f", "left-pad", "feed f", false},
		{"feed f", "lodash", "feed f", false},
		{"feed f", "@acme/x", "", true},
	} {
		p := map[string]*filter.Policy{"connector a": f.Connectors[0], "connector b": f.Connectors[1], "feed f": f.Filter}[tt.policy]
		d := p.Name(tt.name)
		if d.Allowed != tt.allowed || d.Policy != tt.label {
			t.Errorf("%s, %s: allowed %v by %q, want %v by %q", tt.policy, tt.name, d.Allowed, d.Policy, tt.allowed, tt.label)
		}
	}
	if !f.Connectors[1].Empty() {
		t.Error("connector b's empty filter: key is a filter")
	}
}

// TestAdminLists: the admin rows of config's TestOwnedNamesAndAdmin.
func TestAdminLists(t *testing.T) {
	tests := []struct {
		yaml string
		ok   bool
	}{
		{"feeds:\n  f:\n    owned_names: [acme-tool, acme-*, \"@acme/*\", \"@acme/cli-*\"]\n    access:\n      admin: [root, ops]\n", true},
		{"feeds:\n  f:\n    access:\n      admin: [\"$nobody\"]\n", false},
	}
	for _, tt := range tests {
		_, _, err := Parse([]byte(tt.yaml), "test")
		if (err == nil) != tt.ok {
			t.Errorf("%q: %v, want ok=%v", tt.yaml, err, tt.ok)
		}
	}
}

// TestMetricsAccess: the access rows of config's TestMetricsAccessConfig,
// and what the compiled rule lets in.
func TestMetricsAccess(t *testing.T) {
	t.Setenv("NPMGATE_TEST_METRICS_TOKEN", "0123456789abcdef0123")
	const feeds = "connectors: {up: {url: 'https://registry.npmjs.org'}}\nfeeds: {npm: {default: true, connectors: [up]}}\n"
	tests := []struct {
		yaml         string
		access       []string
		err          string
		anonymous, u bool
	}{
		{"", []string{"$anonymous"}, "", true, true},
		{"metrics: {token: '${NPMGATE_TEST_METRICS_TOKEN}'}\n", nil, "", false, false},
		{"metrics: {access: [ops, $authenticated]}\n", []string{"ops", "$authenticated"}, "", false, true},
		{"metrics: {access: [$everyone]}\n", nil, "metrics.access", false, false},
	}
	for _, tt := range tests {
		c, r, err := Parse([]byte(tt.yaml+feeds), "test")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want an error about %s", tt.yaml, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if !slices.Equal(c.Metrics.Access, tt.access) {
			t.Errorf("%q: access %q, want %q", tt.yaml, c.Metrics.Access, tt.access)
		}
		if a, u := r.Metrics.Allows(nil), r.Metrics.Allows(&auth.Principal{Name: "u"}); a != tt.anonymous || u != tt.u {
			t.Errorf("%q: lets in anonymous %v, a user %v; want %v, %v", tt.yaml, a, u, tt.anonymous, tt.u)
		}
	}
}
