package e2e

// npm audit, npm audit signatures and npm search through npmgate
// (proxy/audit.go): audit requests reach the configured audit service
// without the names the feed holds or owns, bodies are bounded, a dead
// audit service is an error npm shows, registry signatures and keys pass
// through untouched, and search merges local packages with the connector's
// results minus what the feed hides.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// auditConfig is a public feed reading through the fake upstream whose
// audits go to AUDIT, owning @corp, and a second feed whose audit
// service is unreachable (DEADAUDIT).
const auditConfig = `
connectors:
  npmjs:
    url: UPSTREAM
    retries: 0
feeds:
  npm:
    default: true
    connectors: [npmjs]
    owned_scopes: ["@corp"]
    audit: AUDIT
  broken:
    connectors: [npmjs]
    audit: DEADAUDIT
`

// Names of the audit tests. None of the private ones may ever reach the
// audit service.
const (
	auditProject = "secret-app-q7z"     // the root project
	auditLocal   = "@acme/private-lib"  // published to the feed
	auditOwned   = "@corp/thing"        // published, in an owned scope
	auditNested  = "@corp/never-public" // owned scope, never published
	auditAdvURL  = "https://github.com/advisories/GHSA-e2e0-ms00-0001"
)

// msAdvisory is what the fake audit service says about ms (the recorded
// data has ms 2.1.3, which debug 4.4.3 depends on), in the bulk
// advisory endpoint's shape.
func msAdvisory() map[string][]map[string]any {
	return map[string][]map[string]any{"ms": {{
		"id": 1094567, "url": auditAdvURL,
		"title":               "Regular expression denial of service in ms (npmgate e2e)",
		"severity":            "high",
		"vulnerable_versions": "<2.2.0",
		"cwe":                 []string{"CWE-1333"},
		"cvss":                map[string]any{"score": 7.5, "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"},
	}}}
}

// auditSetup is npmgate with auditConfig, the fake audit service, and a
// token of the user alice, who may publish.
type auditSetup struct {
	up    *upstream
	svc   *auditService
	g     *gate
	cfg   string
	token string
}

func newAuditSetup(t *testing.T) *auditSetup {
	t.Helper()
	svc := startAuditService(t, msAdvisory())
	up := startUpstream(t, "")
	cfg := strings.NewReplacer("DEADAUDIT", deadLoopbackURL(t), "AUDIT", svc.URL).Replace(auditConfig)
	g, file := startConfiguredGate(t, up, "", cfg)
	addGateUser(t, file, g.Data, "alice", alicePassword)
	token := cliToken(t, g, file, "--user", "alice")
	return &auditSetup{up: up, svc: svc, g: g, cfg: file, token: token}
}

// deadLoopbackURL is an http URL on loopback where nothing listens.
func deadLoopbackURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// checkWithheld fails the test when a body the audit service received
// names a private package or the project.
func checkWithheld(t *testing.T, reqs []auditRequest) {
	t.Helper()
	for _, r := range reqs {
		for _, secret := range []string{"private-lib", "@acme", "@corp", "corp/", "never-public", auditProject} {
			if strings.Contains(string(r.body), secret) {
				t.Errorf("the audit service received %q in %s:\n%s", secret, r.path, r.body)
			}
		}
	}
}

// auditReport is the part of npm audit --json (npm 7+) the tests read.
type auditReport struct {
	AuditReportVersion int `json:"auditReportVersion"`
	Vulnerabilities    map[string]struct {
		Name     string            `json:"name"`
		Severity string            `json:"severity"`
		IsDirect bool              `json:"isDirect"`
		Via      []json.RawMessage `json:"via"`
		Range    string            `json:"range"`
		Nodes    []string          `json:"nodes"`
	} `json:"vulnerabilities"`
	Metadata struct {
		Vulnerabilities map[string]int `json:"vulnerabilities"`
	} `json:"metadata"`
}

// TestAuditNPM runs npm audit in a project whose lockfile holds a local
// package, an owned-scope package and recorded upstream packages, one of
// which the audit service calls vulnerable: npm reports the advisory and
// fails as for any vulnerability found, while the audit service never
// hears a private name or the project's. The same audit again is answered
// from npmgate's memory. On a feed whose audit service is down, npm
// fails with the audit error instead of reporting no vulnerabilities.
func TestAuditNPM(t *testing.T) {
	s := newAuditSetup(t)
	reg := s.g.URL
	pub := newSandbox(t)
	pub.setUserrc(t, npmrcKey(reg)+":_authToken="+s.token)
	for _, name := range []string{auditLocal, auditOwned} {
		dir := pub.dir(t, strings.NewReplacer("@", "", "/", "-").Replace(name))
		writePublishable(t, dir, name, "1.0.0", nil)
		mustSucceed(t, pub.npm(t, dir, reg, "publish"))
	}

	sb := newSandbox(t)
	project := sb.dir(t, "project")
	writeFile(t, filepath.Join(project, "package.json"), string(mustJSON(t, map[string]any{
		"name": auditProject, "version": "1.0.0", "private": true,
		"dependencies": map[string]string{auditLocal: "1.0.0", auditOwned: "1.0.0", "debug": "4.4.3", "ms": "2.1.3"},
	})))
	mustSucceed(t, sb.npm(t, project, reg, "install"))
	checkInstalledVersion(t, project, auditLocal, "1.0.0")
	checkInstalledVersion(t, project, auditOwned, "1.0.0")
	checkInstalledVersion(t, project, "ms", "2.1.3")
	s.svc.reset()

	t.Run("json report", func(t *testing.T) {
		r := sb.npm(t, project, reg, "audit", "--json")
		if r.code != 1 {
			t.Errorf("npm audit --json exited %d, want 1 (vulnerabilities found):\n%s", r.code, r)
		}
		var rep auditReport
		if err := json.Unmarshal([]byte(npmJSONOutput(r.out)), &rep); err != nil {
			t.Fatalf("npm audit --json: %v\n%s", err, r)
		}
		ms, ok := rep.Vulnerabilities["ms"]
		if !ok {
			t.Fatalf("npm audit --json reports no vulnerability of ms:\n%s", r)
		}
		if ms.Severity != "high" || !slices.Contains(ms.Nodes, "node_modules/ms") {
			t.Errorf("ms: severity %q, nodes %v; want high, node_modules/ms", ms.Severity, ms.Nodes)
		}
		var found bool
		for _, raw := range ms.Via {
			var via struct {
				Source int    `json:"source"`
				URL    string `json:"url"`
				Title  string `json:"title"`
				Range  string `json:"range"`
			}
			if json.Unmarshal(raw, &via) == nil && via.URL == auditAdvURL {
				found = true
				if via.Source != 1094567 || via.Range != "<2.2.0" || !strings.Contains(via.Title, "npmgate e2e") {
					t.Errorf("ms advisory as npm reports it: %s", raw)
				}
			}
		}
		if !found {
			t.Errorf("ms: no advisory %s among %s", auditAdvURL, ms.Via)
		}
		for name := range rep.Vulnerabilities {
			if name == auditLocal || name == auditOwned {
				t.Errorf("npm reports a vulnerability of the private package %s", name)
			}
		}
		if rep.Metadata.Vulnerabilities["high"] < 1 {
			t.Errorf("metadata.vulnerabilities %v, want high >= 1", rep.Metadata.Vulnerabilities)
		}

		reqs := s.svc.requests()
		if len(reqs) != 1 || reqs[0].path != "/-/npm/v1/security/advisories/bulk" {
			var paths []string
			for _, q := range reqs {
				paths = append(paths, q.path)
			}
			t.Fatalf("the audit service received %v, want one bulk request", paths)
		}
		var asked map[string][]string
		if err := json.Unmarshal(reqs[0].body, &asked); err != nil {
			t.Fatalf("bulk request: %v: %s", err, reqs[0].body)
		}
		if !slices.Equal(asked["ms"], []string{"2.1.3"}) || !slices.Equal(asked["debug"], []string{"4.4.3"}) {
			t.Errorf("bulk request %s, want ms 2.1.3 and debug 4.4.3", reqs[0].body)
		}
		for _, name := range []string{auditLocal, auditOwned, auditProject} {
			if _, ok := asked[name]; ok {
				t.Errorf("bulk request asks about %s: %s", name, reqs[0].body)
			}
		}
		checkWithheld(t, reqs)
	})

	t.Run("text report from the cache", func(t *testing.T) {
		r := sb.npm(t, project, reg, "audit")
		mustFailWith(t, r, auditAdvURL, "high")
		if r.code != 1 {
			t.Errorf("npm audit exited %d, want 1", r.code)
		}
		if n := len(s.svc.requests()); n != 1 {
			t.Errorf("the audit service received %d requests after two identical audits, want 1 (the second from npmgate's memory)", n)
		}
		m := get(t, reg+"metrics")
		match := regexp.MustCompile(`(?m)^npmgate_audit_withheld_names_total ([0-9.e+]+)$`).FindSubmatch(m.body)
		if match == nil {
			t.Fatalf("/metrics has no npmgate_audit_withheld_names_total:\n%s", m.body)
		}
		if n, _ := strconv.ParseFloat(string(match[1]), 64); n < 2 {
			t.Errorf("npmgate_audit_withheld_names_total %s, want at least 2 (the local and the owned package)", match[1])
		}
	})

	t.Run("audit service down", func(t *testing.T) {
		r := sb.npm(t, project, reg+"npm/broken/", "audit")
		mustFailWith(t, r, "audit endpoint returned an error")
		if strings.Contains(r.out, "found 0 vulnerabilities") {
			t.Errorf("npm reports no vulnerabilities although the audit service is down:\n%s", r)
		}
		body := gzipBytes(t, []byte(`{"ms":["2.1.3"]}`))
		a := post(t, reg+"npm/broken/-/npm/v1/security/advisories/bulk", body, "Content-Type", "application/json", "Content-Encoding", "gzip")
		if a.status != 502 || !json.Valid(a.body) {
			t.Errorf("bulk audit with the audit service down: %d %s, want a 502 JSON error", a.status, a.body)
		}
	})
}

// TestAuditRequests posts audit requests with a plain HTTP client: quick
// and full audits lose private names and the project's name; a gzip bomb
// and an oversized body are refused with 413, a false gzip with 400, and
// npmgate keeps answering.
func TestAuditRequests(t *testing.T) {
	s := newAuditSetup(t)
	reg := s.g.URL
	for _, name := range []string{auditLocal, auditOwned} {
		body := npmPublishBody(t, name, "1.0.0", "latest", npmTarball(t, name, "1.0.0"))
		if r, err := putPublish(reg+strings.Replace(name, "/", "%2f", 1), body, "Authorization", "Bearer "+s.token); err != nil || r.status != 200 {
			t.Fatalf("PUT %s: %d %s %v", name, r.status, r.body, err)
		}
	}
	bulkURL := reg + "-/npm/v1/security/advisories/bulk"

	t.Run("quick and full audits", func(t *testing.T) {
		// npm 6's request: the lockfile v1 tree with requires.
		tree := map[string]any{
			"name": auditProject, "version": "1.0.0", "install": []string{}, "remove": []string{}, "metadata": map[string]any{},
			"requires": map[string]string{"debug": "4.4.3", auditLocal: "1.0.0", auditOwned: "1.0.0"},
			"dependencies": map[string]any{
				"debug": map[string]any{
					"version": "4.4.3", "requires": map[string]string{"ms": "^2.1.3", auditNested: "1.0.0"},
					"dependencies": map[string]any{auditNested: map[string]any{"version": "1.0.0"}},
				},
				"ms":       map[string]any{"version": "2.1.3"},
				auditLocal: map[string]any{"version": "1.0.0", "requires": map[string]string{auditOwned: "1.0.0"}},
				auditOwned: map[string]any{"version": "1.0.0"},
			},
		}
		for _, path := range []string{"/-/npm/v1/security/audits/quick", "/-/npm/v1/security/audits"} {
			s.svc.reset()
			r := post(t, strings.TrimSuffix(reg, "/")+path, gzipBytes(t, mustJSON(t, tree)), "Content-Type", "application/json", "Content-Encoding", "gzip")
			if r.status != 200 || !strings.Contains(string(r.body), `"advisories"`) {
				t.Errorf("POST %s: %d %s", path, r.status, r.body)
			}
			reqs := s.svc.requests()
			if len(reqs) != 1 || reqs[0].path != path {
				t.Errorf("POST %s: the audit service received %d requests, want 1 at %s", path, len(reqs), path)
				continue
			}
			checkWithheld(t, reqs)
			var got struct {
				Name         string            `json:"name"`
				Requires     map[string]string `json:"requires"`
				Dependencies map[string]struct {
					Version  string            `json:"version"`
					Requires map[string]string `json:"requires"`
				} `json:"dependencies"`
			}
			if err := json.Unmarshal(reqs[0].body, &got); err != nil {
				t.Fatalf("%s: %v: %s", path, err, reqs[0].body)
			}
			if got.Name == auditProject || got.Requires["debug"] != "4.4.3" || got.Dependencies["ms"].Version != "2.1.3" ||
				got.Dependencies["debug"].Requires["ms"] != "^2.1.3" {
				t.Errorf("%s forwarded as %s", path, reqs[0].body)
			}
		}
	})

	t.Run("gzip bomb", func(t *testing.T) {
		s.svc.reset()
		bomb := gzipSpaces(t, 100<<20)
		t.Logf("gzip bomb: %d bytes inflating to %d", len(bomb), 100<<20)
		r := post(t, bulkURL, bomb, "Content-Type", "application/json", "Content-Encoding", "gzip")
		wantJSONError(t, r, 413)
	})

	t.Run("oversized body", func(t *testing.T) {
		s.svc.reset()
		big := []byte(`{"ms":["` + strings.Repeat("1", 17<<20) + `"]}`)
		r := post(t, bulkURL, big, "Content-Type", "application/json")
		wantJSONError(t, r, 413)
		// The same within the raw limit but gzipped past the inflated one.
		r = post(t, bulkURL, gzipBytes(t, []byte(`{"ms":["`+strings.Repeat("2", 65<<20)+`"]}`)), "Content-Type", "application/json", "Content-Encoding", "gzip")
		wantJSONError(t, r, 413)
	})

	t.Run("false gzip", func(t *testing.T) {
		r := post(t, bulkURL, []byte(`{"ms":["2.1.3"]}`), "Content-Type", "application/json", "Content-Encoding", "gzip")
		wantJSONError(t, r, 400)
	})

	t.Run("still answering", func(t *testing.T) {
		if n := len(s.svc.requests()); n != 0 {
			t.Errorf("the audit service received %d requests from refused bodies", n)
		}
		if r := get(t, reg+"-/ping"); r.status != 200 {
			t.Errorf("GET /-/ping after the refused bodies: %d %s", r.status, r.body)
		}
		r := post(t, bulkURL, gzipBytes(t, []byte(`{"ms":["2.1.3"],"`+auditLocal+`":["1.0.0"],"`+auditOwned+`":["1.0.0"]}`)),
			"Content-Type", "application/json", "Content-Encoding", "gzip")
		var adv map[string][]struct {
			URL string `json:"url"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &adv) != nil || len(adv["ms"]) != 1 || adv["ms"][0].URL != auditAdvURL {
			t.Errorf("bulk audit after the refused bodies: %d %s", r.status, r.body)
		}
		reqs := s.svc.requests()
		if len(reqs) != 1 || string(reqs[0].body) != `{"ms":["2.1.3"]}` {
			t.Errorf("the audit service received %d requests (%q), want exactly {\"ms\":[\"2.1.3\"]}", len(reqs), reqs)
		}
		checkWithheld(t, reqs)
	})
}

// wantJSONError checks an npm-shaped JSON error answer.
func wantJSONError(t *testing.T, r response, status int) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if r.status != status || json.Unmarshal(r.body, &e) != nil || e.Error == "" {
		t.Errorf("answer %d %.300s, want %d with a JSON error", r.status, r.body, status)
	} else {
		t.Logf("%d %s", r.status, e.Error)
	}
}

// signedConfig is one feed reading through REGISTRY.
const signedConfig = `
connectors:
  own:
    url: REGISTRY
    retries: 0
feeds:
  npm:
    default: true
    connectors: [own]
`

// TestAuditSignatures installs packages whose packuments carry registry
// signatures (made with a key the test generates) through npmgate and
// runs npm audit signatures: npmgate answers the registry's keys (and its
// own, which signs local packages) and keeps dist.signatures as signed, so
// a good signature verifies and a bad one is reported. npm asks the Sigstore TUF repository for the keys first;
// a fake one stands in for it (see fakeTUF).
func TestAuditSignatures(t *testing.T) {
	reg := startAPIRegistry(t)
	signer := newRegSigner(t)
	reg.keys = signer.keysDoc(t)
	const good, bad = "e2e-sig-ok", "e2e-sig-bad"
	reg.publish(t, good, "1.0.0", signer, func(integrity string) string { return good + "@1.0.0:" + integrity })
	// Signed, but not over what npm checks: a tampered document.
	reg.publish(t, bad, "1.0.0", signer, func(integrity string) string { return bad + "@1.0.1:" + integrity })

	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, strings.ReplaceAll(signedConfig, "REGISTRY", reg.URL))
	g := startGate(t, reg.URL, "", "--config", file)
	tuf := startFakeTUF(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fake TUF requests:\n%s", strings.Join(tuf.requests(), "\n"))
		}
	})

	t.Run("passed through", func(t *testing.T) {
		// The registry's keys as it sent them, then npmgate's own, which
		// signs local packages (TestAuditSignaturesLocalAndConnector).
		r := get(t, g.URL+"-/npm/v1/keys")
		var got, sent struct{ Keys []json.RawMessage }
		json.Unmarshal(reg.keys, &sent)
		if r.status != 200 || json.Unmarshal(r.body, &got) != nil || len(got.Keys) != len(sent.Keys)+1 ||
			!jsonEqual(mustJSON(t, got.Keys[:len(sent.Keys)]), mustJSON(t, sent.Keys)) {
			t.Errorf("GET /-/npm/v1/keys: %d %s, want the registry's %s and npmgate's", r.status, r.body, reg.keys)
		}
		for _, accept := range []string{"application/json", "application/vnd.npm.install-v1+json"} {
			r := get(t, g.URL+good, "Accept", accept)
			var doc struct {
				Versions map[string]struct {
					Dist struct {
						Tarball    string `json:"tarball"`
						Signatures any    `json:"signatures"`
					} `json:"dist"`
				} `json:"versions"`
			}
			if r.status != 200 || json.Unmarshal(r.body, &doc) != nil {
				t.Errorf("GET /%s (%s): %d %.300s", good, accept, r.status, r.body)
				continue
			}
			d := doc.Versions["1.0.0"].Dist
			if want := reg.signatures(good, "1.0.0"); !jsonEqual(mustJSON(t, d.Signatures), mustJSON(t, want)) {
				t.Errorf("GET /%s (%s): dist.signatures %v, the registry signed %v", good, accept, d.Signatures, want)
			}
			if !strings.HasPrefix(d.Tarball, g.URL) {
				t.Errorf("GET /%s (%s): dist.tarball %q is not on npmgate", good, accept, d.Tarball)
			}
		}
	})

	sb := newSandbox(t)
	audit := func(t *testing.T, name string) result {
		t.Helper()
		project := sb.dir(t, name)
		writeConsumer(t, project)
		mustSucceed(t, sb.npm(t, project, g.URL, "install", name+"@1.0.0"))
		checkInstalledVersion(t, project, name, "1.0.0")
		cache, err := os.MkdirTemp(sb.root, "npm-cache-")
		if err != nil {
			t.Fatal(err)
		}
		tuf.plant(t, cache)
		return sb.npmIn(t, project, g.URL, cache, tuf.env(sb), "audit", "signatures")
	}

	t.Run("verified", func(t *testing.T) {
		r := audit(t, good)
		mustSucceed(t, r)
		for _, want := range []string{"audited 1 package", "1 package has a verified registry signature",
			"Fetching verification keys using TUF failed.  Fetching directly from " + g.URL} {
			if !strings.Contains(r.out, want) {
				t.Errorf("npm audit signatures output lacks %q:\n%s", want, r)
			}
		}
		if reqs := tuf.requests(); !slices.Contains(reqs, "GET https://"+tufHost+"/targets.json") {
			t.Errorf("npm did not refresh the fake TUF repository (requests %q)", reqs)
		}
		if n := countPrefix(reg.requests(), "GET /-/npm/v1/keys"); n != 1 {
			t.Errorf("the registry was asked for its keys %d times, want 1 (npmgate keeps them an hour)", n)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		r := audit(t, bad)
		mustFailWith(t, r, "1 package has an invalid registry signature", bad+"@1.0.0",
			"Someone might have tampered with this package")
	})
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// searchConfig is one feed reading through REGISTRY, owning @corp and
// excluding e2e-zebra-evil.
const searchConfig = `
connectors:
  own:
    url: REGISTRY
    retries: 0
feeds:
  npm:
    default: true
    connectors: [own]
    owned_scopes: ["@corp"]
    filter:
      exclude: ["e2e-zebra-evil"]
`

// searchPkg is the part of one npm search --json result the tests read.
type searchPkg struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	Maintainers []struct {
		Username string `json:"username"`
	} `json:"maintainers"`
	Publisher *struct {
		Username string `json:"username"`
	} `json:"publisher"`
}

// TestSearchNPM runs npm search through npmgate: a local package is found
// by a word of its description; the connector's results follow without
// the names the feed's filter excludes, owned-scope names, or a second copy
// of a local name; and npm pages through the merged results.
func TestSearchNPM(t *testing.T) {
	reg := startAPIRegistry(t)
	const local = "e2e-zebra-local"
	reg.hits = []searchHit{
		{"e2e-zebra-good", "2.0.0", "public zebrafish helper"},
		{"e2e-zebra-evil", "6.6.6", "zebrafish helper that the feed excludes"},
		{local, "9.9.9", "upstream zebrafish impostor of the local name"},
		{"@corp/zebra-secret", "1.0.0", "zebrafish in the owned scope"},
	}
	for i := 1; i <= 4; i++ {
		reg.hits = append(reg.hits, searchHit{fmt.Sprintf("e2e-okapi-%d", i), "1.0.0", fmt.Sprintf("okapi number %d", i)})
	}
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, strings.ReplaceAll(searchConfig, "REGISTRY", reg.URL))
	g := startGate(t, reg.URL, "", "--config", file)
	addGateUser(t, file, g.Data, "alice", alicePassword)
	token := cliToken(t, g, file, "--user", "alice")

	pub := newSandbox(t)
	pub.setUserrc(t, npmrcKey(g.URL)+":_authToken="+token)
	dir := pub.dir(t, local)
	const localDesc = "internal zebrafish okapi toolkit"
	writePublishable(t, dir, local, "1.0.0", map[string]any{"description": localDesc, "keywords": []string{"e2e"}})
	mustSucceed(t, pub.npm(t, dir, g.URL, "publish"))

	sb := newSandbox(t)
	project := sb.dir(t, "search")
	search := func(t *testing.T, args ...string) []searchPkg {
		t.Helper()
		r := sb.npm(t, project, g.URL, append([]string{"search", "--json"}, args...)...)
		mustSucceed(t, r)
		var pkgs []searchPkg
		if err := json.Unmarshal([]byte(npmJSONOutput(r.out)), &pkgs); err != nil {
			t.Fatalf("npm search --json: %v\n%s", err, r)
		}
		return pkgs
	}
	names := func(pkgs []searchPkg) []string {
		var n []string
		for _, p := range pkgs {
			n = append(n, p.Name)
		}
		return n
	}

	t.Run("local by description", func(t *testing.T) {
		pkgs := search(t, "toolkit")
		if len(pkgs) != 1 || pkgs[0].Name != local || pkgs[0].Version != "1.0.0" || pkgs[0].Description != localDesc {
			t.Errorf("npm search toolkit: %+v, want only %s@1.0.0 (%q)", pkgs, local, localDesc)
		}
		// The connector is asked for what local results leave of the page.
		if !slices.ContainsFunc(reg.requests(), func(r string) bool {
			return strings.HasPrefix(r, "GET /-/v1/search?") && strings.HasSuffix(r, "&text=toolkit")
		}) {
			t.Errorf("the connector was not asked to search for toolkit: %q", reg.requests())
		}
	})

	t.Run("merged with the connector", func(t *testing.T) {
		pkgs := search(t, "zebrafish")
		got := names(pkgs)
		if len(got) == 0 || got[0] != local {
			t.Errorf("npm search zebrafish: %v, want %s first", got, local)
		}
		for _, p := range pkgs {
			if p.Name == local && (p.Version != "1.0.0" || p.Description != localDesc) {
				t.Errorf("%s listed as %s %q, not the local package", local, p.Version, p.Description)
			}
		}
		if n := countOf(got, local); n != 1 {
			t.Errorf("npm search zebrafish lists %s %d times: %v", local, n, got)
		}
		if !slices.Contains(got, "e2e-zebra-good") {
			t.Errorf("npm search zebrafish: %v lacks the connector's e2e-zebra-good", got)
		}
		for _, hidden := range []string{"e2e-zebra-evil", "@corp/zebra-secret"} {
			if slices.Contains(got, hidden) {
				t.Errorf("npm search zebrafish lists %s: %v", hidden, got)
			}
		}
	})

	t.Run("maintainers as npm reads them", func(t *testing.T) {
		// The registry's search answer names people by "username", which
		// npm reads (and prints) from maintainers and publisher.
		for _, p := range search(t, "zebrafish") {
			want := map[string][2]string{local: {"alice", "alice"}, "e2e-zebra-good": {"upstream-maintainer", "upstream-publisher"}}[p.Name]
			if want[0] == "" {
				continue
			}
			var ms []string
			for _, m := range p.Maintainers {
				ms = append(ms, m.Username)
			}
			var pub string
			if p.Publisher != nil {
				pub = p.Publisher.Username
			}
			if !slices.Equal(ms, []string{want[0]}) || pub != want[1] {
				t.Errorf("%s: maintainers' usernames %q, publisher's %q; want [%s] and %s", p.Name, ms, pub, want[0], want[1])
			}
		}
	})

	t.Run("text output", func(t *testing.T) {
		for _, c := range []struct{ word, want string }{{"toolkit", local}, {"zebrafish", "e2e-zebra-good"}} {
			r := sb.npm(t, project, g.URL, "search", c.word)
			if r.code != 0 || !strings.Contains(r.out, c.want) {
				t.Errorf("npm search %s (no --json) failed or lacks %s:\n%s", c.word, c.want, r)
			}
		}
	})

	t.Run("paging", func(t *testing.T) {
		// One local and four connector packages hold "okapi": two to a
		// page, every one of them on some page, and none twice.
		var seen []string
		for from := 0; from <= 6; from += 2 {
			got := names(search(t, "okapi", "--searchlimit=2", "--searchopts=from="+strconv.Itoa(from)))
			t.Logf("from=%d: %v", from, got)
			seen = append(seen, got...)
		}
		want := []string{"e2e-okapi-1", "e2e-okapi-2", "e2e-okapi-3", "e2e-okapi-4", local}
		slices.Sort(seen)
		if !slices.Equal(seen, want) {
			t.Errorf("pages of npm search okapi hold %v, want each of %v once", seen, want)
		}
	})

	t.Run("qualifiers keep private words from the connector", func(t *testing.T) {
		// npm passes qualifiers in the text; their values are checked
		// like free words: the owned scope, a local name, a local
		// maintainer never reach the connector.
		for _, c := range []struct{ query, private string }{
			{"scope:corp", "corp"}, {"keywords:" + local, local}, {"maintainer:alice", "alice"},
		} {
			before := len(reg.requests())
			search(t, c.query)
			for _, r := range reg.requests()[before:] {
				if strings.Contains(strings.ToLower(r), c.private) {
					t.Errorf("npm search %s sent the connector %q", c.query, r)
				}
			}
		}
		if got := names(search(t, "keywords:e2e")); !slices.Equal(got, []string{local}) {
			t.Errorf("npm search keywords:e2e: %v, want the local package alone", got)
		}
	})
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
