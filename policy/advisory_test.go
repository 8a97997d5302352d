package policy

import (
	"strings"
	"testing"
)

// With osv.source set, a feed's filter blocks malicious packages unless
// it says malicious: off; without one, the advisory rules are errors, as
// is a feed answering audits locally.
func TestAdvisoryDefaults(t *testing.T) {
	const conn = "connectors:\n  a:\n    url: http://x\n"
	const src = "osv:\n  source: ./osv.zip\n"
	cases := []struct {
		desc, doc string
		feedUses  bool
		err       string
	}{
		{"database: feeds block malicious by default", src + conn + "feeds:\n  f:\n    connectors: [a]\n", true, ""},
		{"database: malicious off", src + conn + "feeds:\n  f:\n    connectors: [a]\n    filter:\n      malicious: off\n", false, ""},
		{"no database: nothing by default", conn + "feeds:\n  f:\n    connectors: [a]\n", false, ""},
		{"no database: malicious block refused", conn + "feeds:\n  f:\n    filter:\n      malicious: block\n", false,
			"f.yaml:7: feeds.f.filter.malicious: needs an advisory database: set osv.source"},
		{"no database: vulnerable refused on a connector", conn + "    filter:\n      vulnerable: {min_severity: high}\nfeeds:\n  f: {}\n", false,
			"f.yaml:5: connectors.a.filter.vulnerable: needs an advisory database: set osv.source"},
		{"no database: audit local refused", "feeds:\n  f:\n    audit: local\n", false,
			"f.yaml:3: feeds.f.audit: local needs an advisory database: set osv.source"},
		{"local+connector needs a connector", src + "feeds:\n  f:\n    audit: local+connector\n", false,
			"f.yaml:5: feeds.f.audit: local+connector needs a connector in the feed (or use local)"},
		{"bad refresh", "osv:\n  source: x.zip\n  refresh: 10s\nfeeds:\n  f: {}\n", false,
			"f.yaml:3: osv.refresh: at least 1m"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			c, r, err := Parse([]byte(tc.doc), "f.yaml")
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Feeds["f"].Filter.UsesAdvisories(); got != tc.feedUses {
				t.Errorf("feed filter UsesAdvisories %v, want %v", got, tc.feedUses)
			}
			if r.Connectors["a"].UsesAdvisories() {
				t.Error("the connector's filter got the default")
			}
			if tc.feedUses && c.OSV.Refresh.D().Hours() != 6 {
				t.Errorf("osv.refresh default %v", c.OSV.Refresh.D())
			}
		})
	}
}
