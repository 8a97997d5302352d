package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/npmgate/npmgate"

// local is the import path of a package of this module.
func local(rel string) string { return module + "/" + rel }

// rule forbids packages at or below one of from (every package when from
// is empty) to import, directly, a package at or below one of forbidden.
// A package never counts as importing its own tree (cmd/x may import cmd/y).
type rule struct {
	name      string
	from      []string
	forbidden []string
	why       string
	skip      string // why the rule is not enforced yet
}

var storageAndHTTP = []string{local("cache"), local("pgstore"), local("proxy/upstream"), "github.com/valyala/fasthttp", "net/http"}

var rules = []rule{
	{
		name:      "cache is below proxy and feed and beside filter and auth",
		from:      []string{local("cache")},
		forbidden: []string{local("proxy"), local("feed"), local("filter"), local("auth")},
		why:       "the stores know nothing of requests, policies or users",
	},
	{
		name:      "filter is below proxy and feed and beside cache and auth",
		from:      []string{local("filter")},
		forbidden: []string{local("proxy"), local("feed"), local("cache"), local("auth")},
		why:       "a policy is a pure function of a document",
	},
	{
		name:      "auth is below proxy and feed and beside cache and filter",
		from:      []string{local("auth")},
		forbidden: []string{local("proxy"), local("feed"), local("cache"), local("filter")},
		why:       "credentials are checked the same way whatever serves them",
	},
	{
		name:      "only cmd imports cmd",
		forbidden: []string{local("cmd")},
		why:       "commands are the top of the graph; what they share belongs in a library package",
	},
	{
		name:      "the npm document code touches no storage and no HTTP",
		from:      []string{local("proxy/npm"), local("filter")},
		forbidden: storageAndHTTP,
		why:       "documents and policies are tested, and reused, as pure data transformations",
	},
	{
		name:      "pgstore is below proxy and feed",
		from:      []string{local("pgstore")},
		forbidden: []string{local("proxy"), local("feed")},
		why:       "the database is a store the front end uses, not the other way round",
	},
	{
		name:      "cache takes its own options, not the configuration",
		from:      []string{local("cache")},
		forbidden: []string{local("config")},
		why:       "the tiers do not depend on the file's format; the caller converts (cache.S3Options)",
	},
	{
		name:      "feed is below the HTTP edge",
		from:      []string{local("feed")},
		forbidden: []string{local("proxy") + "$", local("cmd"), "github.com/valyala/fasthttp", "net/http"},
		why:       "a feed answers in documents, tarballs and errors; routes, statuses and headers are the edge's (proxy)",
	},
	{
		name:      "config knows nothing of filter and auth",
		from:      []string{local("config")},
		forbidden: []string{local("filter"), local("auth")},
		why:       "configuration is plain data; checking rules and groups belongs to the packages that use them (policy compiles them)",
	},
	{
		name:      "policy compiles rules and opens nothing",
		from:      []string{local("policy")},
		forbidden: []string{local("proxy"), local("feed"), local("cache"), local("pgstore"), local("cmd")},
		why:       "the server takes compiled rules from policy, so policy must not depend on what serves them",
	},
	{
		name:      "the advisory database is pure; its source has the HTTP",
		from:      []string{local("osv") + "$"},
		forbidden: append([]string{local("osv/source"), local("proxy") + "$", local("feed")}, storageAndHTTP...),
		why:       "filters decide on advisories at render time, so the database is data; fetching and refreshing it is osv/source's",
	},
	{
		name:      "vers is a leaf",
		from:      []string{local("internal/vers")},
		forbidden: []string{local("proxy"), local("feed"), local("cache"), local("filter"), local("auth"), local("config"), local("policy"), local("osv"), local("pgstore")},
		why:       "the one version parser of filter and osv depends on nothing of theirs",
	},
	{
		name:      "sign is pure crypto",
		from:      []string{local("sign")},
		forbidden: []string{local("proxy"), local("feed"), local("cache"), local("config"), local("pgstore"), local("auth"), local("filter"), local("policy"), local("cmd"), "net/http", "github.com/valyala/fasthttp"},
		why:       "signatures are made and checked the same way wherever the key comes from; the caller reads the configuration",
	},
	{
		name:      "trustpub knows no other package of npmgate",
		from:      []string{local("trustpub")},
		forbidden: []string{local("auth"), local("cache"), local("cmd"), local("config"), local("feed"), local("filter"), local("internal/vers"), local("osv"), local("pgstore"), local("policy"), local("proxy"), local("warm")},
		why:       "verifying an ID token and matching its claims is the same whoever serves the exchange",
	},
	{
		name:      "the web UI reads feeds and never the edge or the stores' wiring",
		from:      []string{local("ui")},
		forbidden: []string{local("proxy") + "$", local("proxy/upstream"), local("pgstore"), local("cmd"), local("policy"), local("config")},
		why:       "pages show what a feed serves through the feed; the edge routes to the UI and maps its errors",
	},
}

// under reports whether path is pattern or below it.
// A pattern ending in "$" names that package alone, not those below it.
func under(path, pattern string) bool {
	if exact, ok := strings.CutSuffix(pattern, "$"); ok {
		return path == exact
	}
	return path == pattern || strings.HasPrefix(path, pattern+"/")
}

// violations lists the imports of graph (package → its direct imports)
// that r forbids.
func (r rule) violations(graph map[string][]string) []string {
	var out []string
	for pkg, imports := range graph {
		if len(r.from) > 0 && !slices.ContainsFunc(r.from, func(f string) bool { return under(pkg, f) }) {
			continue
		}
		for _, f := range r.forbidden {
			if under(pkg, f) {
				continue // its own tree
			}
			for _, imp := range imports {
				if under(imp, f) {
					out = append(out, pkg+" imports "+imp)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// importGraph is the module's packages and their direct (non-test) imports,
// as go list reports them.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	return parseGraph(string(out))
}

func parseGraph(out string) map[string][]string {
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			graph[f[0]] = f[1:]
		}
	}
	return graph
}

func TestImportRule(t *testing.T) {
	graph := importGraph(t)
	if len(graph[local("proxy")]) == 0 {
		t.Fatalf("go list reported no imports of %s: %v", local("proxy"), graph)
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			if r.skip != "" {
				t.Skip(r.skip)
			}
			for _, v := range r.violations(graph) {
				t.Errorf("%s: %s", v, r.why)
			}
		})
	}
}

// TestImportRuleCatches runs the rules on made-up go list output, so that
// a rule that can never fire (a misspelt path) does not pass for kept.
func TestImportRuleCatches(t *testing.T) {
	fake := parseGraph(strings.Join([]string{
		local("cache") + " " + local("proxy") + " " + local("proxyish") + " " + local("config") + " os",
		local("cache/storetest") + " " + local("cache"),
		local("filter") + " net/http " + local("auth"),
		local("auth") + " " + local("feed/render"),
		local("warm") + " " + local("cmd/npmgate"),
		local("cmd/npmgate") + " " + local("cmd/npmgate/internal/x") + " " + local("proxy"),
		local("proxy/npm") + " github.com/valyala/fasthttp " + local("proxy/npmish"),
		local("pgstore") + " " + local("proxy/upstream"),
		local("config") + " " + local("filter"),
		local("feed") + " " + local("proxy/npm") + " " + local("proxy") + " github.com/valyala/fasthttp",
		local("policy") + " " + local("config") + " " + local("filter") + " " + local("auth") + " " + local("cache"),
		local("osv") + " " + local("proxy/npm") + " " + local("osv/source") + " net/http",
		local("osv/source") + " " + local("osv") + " net/http",
		local("internal/vers") + " strings " + local("filter"),
		local("sign") + " crypto/ecdsa " + local("config"),
		local("trustpub") + " " + local("trustpubish") + " " + local("config") + " net/http",
		local("ui") + " " + local("feed") + " " + local("proxy") + " " + local("proxy/npm"),
	}, "\n"))
	want := map[string][]string{
		"cache is below proxy and feed and beside filter and auth": {local("cache") + " imports " + local("proxy")},
		"filter is below proxy and feed and beside cache and auth": {local("filter") + " imports " + local("auth")},
		"auth is below proxy and feed and beside cache and filter": {local("auth") + " imports " + local("feed/render")},
		"cache takes its own options, not the configuration":       {local("cache") + " imports " + local("config")},
		"only cmd imports cmd": {local("warm") + " imports " + local("cmd/npmgate")},
		"the npm document code touches no storage and no HTTP": {
			local("filter") + " imports net/http",
			local("proxy/npm") + " imports github.com/valyala/fasthttp",
		},
		"pgstore is below proxy and feed":         {local("pgstore") + " imports " + local("proxy/upstream")},
		"config knows nothing of filter and auth": {local("config") + " imports " + local("filter")},
		"feed is below the HTTP edge": {
			local("feed") + " imports " + local("proxy"),
			local("feed") + " imports github.com/valyala/fasthttp",
		},
		"policy compiles rules and opens nothing": {local("policy") + " imports " + local("cache")},
		"the advisory database is pure; its source has the HTTP": {
			local("osv") + " imports " + local("osv/source"),
			local("osv") + " imports net/http",
		},
		"vers is a leaf":                             {local("internal/vers") + " imports " + local("filter")},
		"sign is pure crypto":                        {local("sign") + " imports " + local("config")},
		"trustpub knows no other package of npmgate": {local("trustpub") + " imports " + local("config")},
		"the web UI reads feeds and never the edge or the stores' wiring": {local("ui") + " imports " + local("proxy")},
	}
	for _, r := range rules {
		got := r.violations(fake)
		if !slices.Equal(got, want[r.name]) {
			t.Errorf("%s: got %q, want %q", r.name, got, want[r.name])
		}
	}
	if len(want) != len(rules) {
		t.Errorf("%d rules, %d expectations", len(rules), len(want))
	}
}
