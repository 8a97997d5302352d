package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// publishConfig is one public feed, at / and /npm/npm/, that reads through
// the fake upstream and takes publishes from authenticated users, and
// owns the scope @corp.
const publishConfig = `
connectors:
  npmjs:
    url: UPSTREAM
    retries: 0
feeds:
  npm:
    default: true
    connectors: [npmjs]
    owned_scopes: ["@corp"]
`

// publishSetup is an npmgate with publishConfig, the user alice and a
// token of hers.
type publishSetup struct {
	up    *upstream
	g     *gate
	cfg   string
	token string
	watch *secretWatch
}

func newPublishSetup(t *testing.T) *publishSetup {
	t.Helper()
	return newPublishSetupWith(t, startUpstream(t, ""), publishConfig)
}

// newPublishSetupWith is newPublishSetup with another configuration and
// upstream.
func newPublishSetupWith(t *testing.T, up *upstream, config string) *publishSetup {
	t.Helper()
	w := watchSecrets(t)
	w.addPassword("alice", alicePassword)
	up = w.upstream(up)
	g, cfg := startConfiguredGate(t, up, "", config)
	w.gate(t, g)
	addGateUser(t, cfg, g.Data, "alice", alicePassword)
	token := cliToken(t, g, cfg, "--user", "alice")
	w.add("alice's token", token)
	return &publishSetup{up: up, g: g, cfg: cfg, token: token, watch: w}
}

// publisher is a sandbox whose npm is logged in to npmgate.
func (s *publishSetup) publisher(t *testing.T) *sandbox {
	t.Helper()
	sb := newSandbox(t)
	sb.setUserrc(t, npmrcKey(s.g.URL)+":_authToken="+s.token)
	return sb
}

// npmViewJSON runs npm view name field --json and decodes its output.
func npmViewJSON(t *testing.T, sb *sandbox, registry, name, field string, v any) {
	t.Helper()
	project := sb.dir(t, "view")
	r := sb.npm(t, project, registry, "view", name, field, "--json")
	mustSucceed(t, r)
	if err := json.Unmarshal([]byte(npmJSONOutput(r.out)), v); err != nil {
		t.Fatalf("npm view %s %s --json: %v\n%s", name, field, err, r)
	}
}

// TestPublishNPM publishes with npm, unscoped and scoped, installs what was
// published next to an upstream package, and goes through what npm does
// to a published package: a second version, dist-tags, deprecation,
// unpublishing a version and the whole package. A version once published
// is refused ever after (E409), and the local name is never asked
// upstream once it exists.
func TestPublishNPM(t *testing.T) {
	s := newPublishSetup(t)
	reg := s.g.URL
	sb := s.publisher(t)
	reader := newSandbox(t) // anonymous: the feed is public to read
	lib := sb.dir(t, "e2e-lib")
	writePublishable(t, lib, "e2e-lib", "1.0.0", nil)
	scoped := sb.dir(t, "scoped")
	writePublishable(t, scoped, "@e2e/lib", "1.0.0", nil)

	n := 0
	install := func(t *testing.T, specs ...string) (string, result) {
		t.Helper()
		n++
		project := reader.dir(t, fmt.Sprintf("consumer-%d", n))
		writeConsumer(t, project)
		return project, reader.npm(t, project, reg, append([]string{"install"}, specs...)...)
	}
	publish := func(t *testing.T, dir string, args ...string) result {
		t.Helper()
		return sb.npm(t, dir, reg, append([]string{"publish"}, args...)...)
	}

	if !t.Run("publish", func(t *testing.T) {
		r := publish(t, lib)
		mustSucceed(t, r)
		if !strings.Contains(r.out, "PUT 200 "+reg+"e2e-lib") || !strings.Contains(r.out, "+ e2e-lib@1.0.0") {
			t.Errorf("npm publish output:\n%s", r)
		}
		r = publish(t, scoped)
		mustSucceed(t, r)
		if !strings.Contains(r.out, "PUT 200 "+reg+"@e2e%2flib") || !strings.Contains(r.out, "+ @e2e/lib@1.0.0") {
			t.Errorf("npm publish output:\n%s", r)
		}
		setPackageVersion(t, lib, "1.1.0-beta.0")
		mustSucceed(t, publish(t, lib, "--tag", "beta"))
	}) {
		return
	}
	s.up.ResetStats()

	t.Run("install with an upstream package", func(t *testing.T) {
		project, r := install(t, "e2e-lib", "@e2e/lib", "debug@4.4.3")
		mustSucceed(t, r)
		checkInstalledVersion(t, project, "e2e-lib", "1.0.0") // latest, not beta
		checkInstalledVersion(t, project, "@e2e/lib", "1.0.0")
		checkInstalledVersion(t, project, "debug", "4.4.3")
		checkInstalledVersion(t, project, "ms", "2.1.3")
		for name, want := range map[string]string{"e2e-lib": "e2e-lib@1.0.0", "@e2e/lib": "@e2e/lib@1.0.0"} {
			if got := reader.installedValue(t, project, name); got != want {
				t.Errorf("require(%q) = %q, want %q", name, got, want)
			}
		}
		// The lockfile's integrity is the tarball's, as npmgate serves it.
		lf := readLockfile(t, filepath.Join(project, "package-lock.json"))
		for _, p := range lf.Packages {
			if p.Path != "node_modules/e2e-lib" && p.Path != "node_modules/@e2e/lib" {
				continue
			}
			if !strings.HasPrefix(p.Resolved, reg) {
				t.Errorf("%s resolved to %s, not under %s", p.Path, p.Resolved, reg)
			}
			tb := get(t, p.Resolved)
			if tb.status != 200 || !parseIntegrity(t, p.Integrity).matches(t, tb.body) {
				t.Errorf("GET %s: %d, %d bytes that do not match the lockfile's %s", p.Resolved, tb.status, len(tb.body), p.Integrity)
			}
		}
		project, r = install(t, "e2e-lib@beta")
		mustSucceed(t, r)
		checkInstalledVersion(t, project, "e2e-lib", "1.1.0-beta.0")
	})

	t.Run("second version and dist-tags", func(t *testing.T) {
		setPackageVersion(t, lib, "1.1.0")
		mustSucceed(t, publish(t, lib))
		var versions []string
		npmViewJSON(t, reader, reg, "e2e-lib", "versions", &versions)
		if want := []string{"1.0.0", "1.1.0-beta.0", "1.1.0"}; !slices.Equal(versions, want) {
			t.Errorf("npm view versions: %v, want %v", versions, want)
		}
		distTags := func(t *testing.T) string {
			t.Helper()
			r := sb.npm(t, lib, reg, "dist-tag", "ls", "e2e-lib")
			mustSucceed(t, r)
			lines := npmOutputLines(r.out)
			sort.Strings(lines)
			return strings.Join(lines, "\n")
		}
		if got, want := distTags(t), "beta: 1.1.0-beta.0\nlatest: 1.1.0"; got != want {
			t.Errorf("npm dist-tag ls:\n%s\nwant:\n%s", got, want)
		}
		r := sb.npm(t, lib, reg, "dist-tag", "add", "e2e-lib@1.0.0", "stable")
		mustSucceed(t, r)
		if !strings.Contains(r.out, "+stable: e2e-lib@1.0.0") {
			t.Errorf("npm dist-tag add:\n%s", r)
		}
		mustSucceed(t, sb.npm(t, lib, reg, "dist-tag", "rm", "e2e-lib", "beta"))
		if got, want := distTags(t), "latest: 1.1.0\nstable: 1.0.0"; got != want {
			t.Errorf("npm dist-tag ls:\n%s\nwant:\n%s", got, want)
		}
		mustFailWith(t, sb.npm(t, lib, reg, "dist-tag", "add", "e2e-lib@9.9.9", "nope"), "404")
		// Readers may not change tags.
		mustFailWith(t, reader.npm(t, lib, reg, "dist-tag", "add", "e2e-lib@1.0.0", "mine"), npmE401, "PUT 401 "+reg+"-/package/e2e-lib/dist-tags/mine")
		project, r := install(t, "e2e-lib@stable")
		mustSucceed(t, r)
		checkInstalledVersion(t, project, "e2e-lib", "1.0.0")
	})

	t.Run("deprecate", func(t *testing.T) {
		const msg = "e2e-lib 1.0.0 is retired, use 1.1"
		mustSucceed(t, sb.npm(t, lib, reg, "deprecate", "e2e-lib@1.0.0", msg))
		project, r := install(t, "e2e-lib@1.0.0")
		mustSucceed(t, r)
		checkInstalledVersion(t, project, "e2e-lib", "1.0.0")
		if !strings.Contains(r.out, "npm warn deprecated e2e-lib@1.0.0: "+msg) {
			t.Errorf("npm install of the deprecated version shows no deprecation warning:\n%s", r)
		}
		_, r = install(t, "e2e-lib@1.1.0")
		mustSucceed(t, r)
		if strings.Contains(r.out, "deprecated") {
			t.Errorf("npm install of 1.1.0 warns of a deprecation:\n%s", r)
		}
	})

	t.Run("unpublish a version", func(t *testing.T) {
		r := sb.npm(t, lib, reg, "unpublish", "e2e-lib@1.1.0")
		mustSucceed(t, r)
		if !strings.Contains(r.out, "- e2e-lib@1.1.0") {
			t.Errorf("npm unpublish:\n%s", r)
		}
		var versions []string
		npmViewJSON(t, reader, reg, "e2e-lib", "versions", &versions)
		if want := []string{"1.0.0", "1.1.0-beta.0"}; !slices.Equal(versions, want) {
			t.Errorf("npm view versions after unpublish: %v, want %v", versions, want)
		}
		if r := get(t, reg+"e2e-lib/-/e2e-lib-1.1.0.tgz"); r.status != 404 {
			t.Errorf("GET the unpublished tarball: %d, want 404", r.status)
		}
		_, r = install(t, "e2e-lib@1.1.0")
		mustFailWith(t, r, "npm error code ETARGET")

		// Never again, although npm no longer sees it.
		r = publish(t, lib)
		mustFailWith(t, r, "npm error code E409", "PUT 409 "+reg+"e2e-lib", "cannot publish over the previously published version e2e-lib@1.1.0")
		// A version still there. (npm's own check before the upload
		// skips deprecated versions, so here too it is npmgate that
		// refuses.)
		setPackageVersion(t, lib, "1.0.0")
		mustFailWith(t, publish(t, lib), "npm error code E409", "PUT 409 "+reg+"e2e-lib", "e2e-lib@1.0.0")
		mustFailWith(t, publish(t, lib, "--force"), "npm error code E409", "PUT 409 "+reg+"e2e-lib")
		// The deprecated version kept its message through all this.
		_, doc := getFullPackument(t, reg+"e2e-lib")
		if doc.Versions["1.0.0"].Deprecated == "" {
			t.Errorf("1.0.0 lost its deprecation: %+v", doc.Versions["1.0.0"])
		}
	})

	t.Run("unpublish the package", func(t *testing.T) {
		r := sb.npm(t, lib, reg, "unpublish", "e2e-lib", "--force")
		mustSucceed(t, r)
		if !strings.Contains(r.out, "- e2e-lib") {
			t.Errorf("npm unpublish:\n%s", r)
		}
		if st, _ := getFullPackument(t, reg+"e2e-lib"); st != 404 {
			t.Errorf("GET the unpublished package: %d, want 404", st)
		}
		for _, f := range []string{"e2e-lib-1.0.0.tgz", "e2e-lib-1.1.0-beta.0.tgz"} {
			if r := get(t, reg+"e2e-lib/-/"+f); r.status != 404 {
				t.Errorf("GET %s after unpublish: %d, want 404", f, r.status)
			}
		}
		_, r = install(t, "e2e-lib")
		mustFailWith(t, r, "npm error code E404")

		setPackageVersion(t, lib, "1.0.0")
		mustFailWith(t, publish(t, lib), "npm error code E409", "PUT 409 "+reg+"e2e-lib")
		setPackageVersion(t, lib, "1.1.0")
		mustFailWith(t, publish(t, lib), "npm error code E409")
		// A new version brings the package back.
		setPackageVersion(t, lib, "2.0.0")
		mustSucceed(t, publish(t, lib))
		project, r := install(t, "e2e-lib")
		mustSucceed(t, r)
		checkInstalledVersion(t, project, "e2e-lib", "2.0.0")

		r = sb.npm(t, scoped, reg, "unpublish", "@e2e/lib", "--force")
		mustSucceed(t, r)
		if st, _ := getFullPackument(t, reg+"@e2e%2flib"); st != 404 {
			t.Errorf("GET the unpublished scoped package: %d, want 404", st)
		}
		mustFailWith(t, publish(t, scoped), "npm error code E409")
	})

	// Once the names were local, nothing about them was asked upstream,
	// not even after they were unpublished.
	for _, name := range []string{"e2e-lib", "e2e%2flib"} {
		if p := upstreamPathsWith(s.up, name); len(p) > 0 {
			t.Errorf("upstream was asked for the local package %s: %v", name, p)
		}
	}
}

// npmOutputLines is npm's output without its log lines and blank lines.
func npmOutputLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "npm ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestPublishDependencyConfusion publishes debug@0.0.1 to a feed whose
// upstream has debug up to 4.4.3 and which claims debug in owned_names:
// the local name hides every upstream version, and upstream is never asked
// about it, not even by npm's own check before the publish. A name in the
// owned scope @corp that was never published is a 404 that upstream never
// hears of.
func TestPublishDependencyConfusion(t *testing.T) {
	s := newPublishSetupWith(t, startUpstream(t, ""), publishConfig+"    owned_names: [debug]\n")
	reg := s.g.URL
	sb := s.publisher(t)
	reader := newSandbox(t)
	s.up.ResetStats()

	pkg := sb.dir(t, "debug")
	writePublishable(t, pkg, "debug", "0.0.1", nil)
	// A plain publish: npm's check reads the feed's debug, which is local
	// only (a 404 before the first publish), never upstream's.
	r := sb.npm(t, pkg, reg, "publish")
	mustSucceed(t, r)

	project := reader.dir(t, "project")
	writeConsumer(t, project)
	mustSucceed(t, reader.npm(t, project, reg, "install", "debug"))
	checkInstalledVersion(t, project, "debug", "0.0.1")
	if v := reader.installedValue(t, project, "debug"); v != "debug@0.0.1" {
		t.Errorf("require(\"debug\") = %q: not the local package", v)
	}
	var versions []string
	npmViewJSON(t, reader, reg, "debug", "versions", &versions)
	if !slices.Equal(versions, []string{"0.0.1"}) {
		t.Errorf("npm view debug versions: %v, want only the local 0.0.1", versions)
	}
	// Upstream's tarball of debug is not reachable through the feed.
	if r := get(t, reg+"debug/-/debug-4.4.3.tgz"); r.status != 404 {
		t.Errorf("GET upstream's debug-4.4.3.tgz through the feed: %d, want 404", r.status)
	}
	if p := upstreamPathsWith(s.up, "debug"); len(p) > 0 {
		t.Errorf("upstream was asked for debug: %v", p)
	}

	missing := reader.dir(t, "corp")
	writeConsumer(t, missing)
	r = reader.npm(t, missing, reg, "install", "@corp/nothing")
	mustFailWith(t, r, "npm error code E404", "GET 404 "+reg+"@corp%2fnothing")

	corp := sb.dir(t, "corp-real")
	writePublishable(t, corp, "@corp/real", "1.0.0", nil)
	mustSucceed(t, sb.npm(t, corp, reg, "publish"))
	mustSucceed(t, reader.npm(t, missing, reg, "install", "@corp/real"))
	checkInstalledVersion(t, missing, "@corp/real", "1.0.0")
	if p := upstreamPathsWith(s.up, "corp"); len(p) > 0 {
		t.Errorf("upstream was asked for the owned scope @corp: %v", p)
	}
}

// TestPublishConcurrent PUTs 50 versions of one package at once, each as
// npm publish sends it: every one is accepted, listed, and serves its own
// bytes.
func TestPublishConcurrent(t *testing.T) {
	const n = 50
	s := newPublishSetup(t)
	reg := s.g.URL
	tarballs := make([][]byte, n)
	for i := range tarballs {
		tarballs[i] = npmTarball(t, "e2e-many", fmt.Sprintf("1.0.%d", i))
	}
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		version := fmt.Sprintf("1.0.%d", i)
		body := npmPublishBody(t, "e2e-many", version, "latest", tarballs[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := putPublish(reg+"e2e-many", body, "Authorization", "Bearer "+s.token)
			answers[i] = answer{r.status, string(r.body), err}
		}()
	}
	close(start)
	wg.Wait()
	for i, a := range answers {
		if a.err != nil || a.status != 200 {
			t.Errorf("PUT e2e-many@1.0.%d: %d %s %v", i, a.status, a.body, a.err)
		}
	}

	sb := newSandbox(t)
	var versions []string
	npmViewJSON(t, sb, reg, "e2e-many", "versions", &versions)
	if len(versions) != n {
		t.Errorf("npm view e2e-many versions lists %d versions, want %d: %v", len(versions), n, versions)
	}
	_, doc := getFullPackument(t, reg+"e2e-many")
	for i, tgz := range tarballs {
		v := fmt.Sprintf("1.0.%d", i)
		pv, ok := doc.Versions[v]
		if !ok {
			t.Errorf("the packument lacks %s", v)
			continue
		}
		if pv.Dist.Integrity != sriOf(tgz) {
			t.Errorf("%s: integrity %s, want %s", v, pv.Dist.Integrity, sriOf(tgz))
		}
		if r := get(t, pv.Dist.Tarball); r.status != 200 || !bytes.Equal(r.body, tgz) {
			t.Errorf("GET %s: %d, %d bytes, not the %d published", pv.Dist.Tarball, r.status, len(r.body), len(tgz))
		}
	}
	if _, ok := doc.Versions[doc.DistTags["latest"]]; !ok {
		t.Errorf("latest is %q, not a published version", doc.DistTags["latest"])
	}
	project := sb.dir(t, "project")
	writeConsumer(t, project)
	mustSucceed(t, sb.npm(t, project, reg, "install", "e2e-many@1.0.42"))
	checkInstalledVersion(t, project, "e2e-many", "1.0.42")

	// Ten different tarballs for one new version at once: exactly one
	// wins, the others get 409, and the version serves the winner's bytes.
	const racers = 10
	race := make([][]byte, racers)
	statuses := make([]int, racers)
	start = make(chan struct{})
	for i := range race {
		race[i] = bigTarball(t, "e2e-many", "2.0.0", 1024+i)
		body := npmPublishBody(t, "e2e-many", "2.0.0", "latest", race[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := putPublish(reg+"e2e-many", body, "Authorization", "Bearer "+s.token)
			if err != nil {
				t.Errorf("PUT e2e-many@2.0.0 (racer %d): %v", i, err)
			}
			statuses[i] = r.status
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, st := range statuses {
		switch {
		case st == 200 && winner < 0:
			winner = i
		case st == 200:
			t.Errorf("two publishes of e2e-many@2.0.0 were accepted (racers %d and %d)", winner, i)
		case st != 409:
			t.Errorf("racer %d: %d, want 200 or 409", i, st)
		}
	}
	if winner < 0 {
		t.Fatalf("no publish of e2e-many@2.0.0 was accepted: %v", statuses)
	}
	_, doc = getFullPackument(t, reg+"e2e-many")
	v := doc.Versions["2.0.0"]
	if v.Dist.Integrity != sriOf(race[winner]) {
		t.Errorf("2.0.0 has integrity %s, not the accepted publish's", v.Dist.Integrity)
	}
	if r := get(t, v.Dist.Tarball); !bytes.Equal(r.body, race[winner]) {
		t.Errorf("2.0.0 serves %d bytes that are not the accepted publish's", len(r.body))
	}
}

// putPublish sends a JSON body; headers are name, value pairs.
func putPublish(u string, body []byte, headers ...string) (response, error) {
	req, err := http.NewRequest("PUT", u, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b.Bytes()}, err
}

// TestPublishCrash kills npmgate with SIGKILL while a publish of a 4 MiB
// package is in flight, in the middle of its body and at several moments
// after all of it was sent, and restarts it on the same data directory
// each time. Each version is then either absent (and may be published
// again) or present with a tarball that matches its integrity; nothing is
// left in tmp/; and npm installs the package.
func TestPublishCrash(t *testing.T) {
	s := newPublishSetup(t)
	g := s.g
	body := npmPublishBody(t, "e2e-big", "1.0.0", "latest", npmTarball(t, "e2e-big", "1.0.0"))
	if r, err := putPublish(g.URL+"e2e-big", body, "Authorization", "Bearer "+s.token); err != nil || r.status != 200 {
		t.Fatalf("PUT e2e-big@1.0.0: %d %s %v", r.status, r.body, err)
	}

	restart := func(t *testing.T) {
		t.Helper()
		httpc.CloseIdleConnections()
		g.signal(t, syscall.SIGKILL)
		g.wait(t)
		g = s.watch.gate(t, startGate(t, s.up.URL, g.Data, "--config", s.cfg))
		if tmp := filesUnder(t, filepath.Join(g.Data, "tmp")); len(tmp) > 0 {
			t.Errorf("after the restart, tmp/ holds %v", tmp)
		}
	}

	// killDuring sends a publish of version on a raw connection, the
	// first sendBytes bytes of it (all, when negative), waits delay and
	// kills npmgate.
	killDuring := func(t *testing.T, version string, tgz []byte, sendBytes int, delay time.Duration) {
		t.Helper()
		doc := npmPublishBody(t, "e2e-big", version, "latest", tgz)
		u, err := url.Parse(g.URL)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		head := fmt.Sprintf("PUT /e2e-big HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", u.Host, s.token, len(doc))
		if sendBytes < 0 {
			sendBytes = len(doc)
		}
		if _, err := conn.Write(append([]byte(head), doc[:sendBytes]...)); err != nil {
			t.Fatalf("sending the publish: %v", err)
		}
		time.Sleep(delay) // the moment of the crash, not an assertion
		restart(t)
	}

	// checkVersion judges the state after a crash: present and whole, or
	// absent and publishable.
	checkVersion := func(t *testing.T, version string, tgz []byte, mayExist bool) {
		t.Helper()
		st, doc := getFullPackument(t, g.URL+"e2e-big")
		if st != 200 {
			t.Fatalf("GET e2e-big after the restart: %d", st)
		}
		if _, ok := doc.Versions["1.0.0"]; !ok {
			t.Errorf("1.0.0, published before the crash, is gone: %v", doc.Versions)
		}
		if _, ok := doc.Versions[doc.DistTags["latest"]]; !ok {
			t.Errorf("latest is %q, which is not a version of %v", doc.DistTags["latest"], doc.Versions)
		}
		v, present := doc.Versions[version]
		t.Logf("after the crash, %s is present: %v", version, present)
		if present && !mayExist {
			t.Errorf("%s is published although its body was never complete", version)
		}
		again := npmPublishBody(t, "e2e-big", version, "latest", tgz)
		if present {
			if v.Dist.Integrity != sriOf(tgz) {
				t.Errorf("%s: integrity %s, want %s", version, v.Dist.Integrity, sriOf(tgz))
			}
			r := get(t, v.Dist.Tarball)
			if r.status != 200 || !bytes.Equal(r.body, tgz) {
				t.Errorf("GET %s: %d, %d bytes, want the %d published", v.Dist.Tarball, r.status, len(r.body), len(tgz))
			}
			if r, err := putPublish(g.URL+"e2e-big", again, "Authorization", "Bearer "+s.token); err != nil || r.status != 409 {
				t.Errorf("PUT %s again: %d %s %v, want 409", version, r.status, r.body, err)
			}
			return
		}
		// Never published: it can be now, whole.
		if r, err := putPublish(g.URL+"e2e-big", again, "Authorization", "Bearer "+s.token); err != nil || r.status != 200 {
			t.Errorf("PUT %s after the crash lost it: %d %s %v, want 200", version, r.status, r.body, err)
		}
		if _, doc := getFullPackument(t, g.URL+"e2e-big"); doc.Versions[version].Dist.Integrity != sriOf(tgz) {
			t.Errorf("%s, published again, has integrity %q", version, doc.Versions[version].Dist.Integrity)
		}
	}

	// The rounds run in this test, not in subtests, because each
	// restarted npmgate must outlive its round.
	t.Logf("round: kill in the middle of the body of 2.0.0")
	tgz := bigTarball(t, "e2e-big", "2.0.0", 4<<20)
	killDuring(t, "2.0.0", tgz, len(npmPublishBody(t, "e2e-big", "2.0.0", "latest", tgz))/2, 0)
	checkVersion(t, "2.0.0", tgz, false)
	for i, delay := range []time.Duration{0, 30 * time.Millisecond, 60 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond} {
		version := fmt.Sprintf("%d.0.0", i+3)
		t.Logf("round: kill %s after the whole body of %s", delay, version)
		tgz := bigTarball(t, "e2e-big", version, 4<<20)
		killDuring(t, version, tgz, -1, delay)
		checkVersion(t, version, tgz, true)
	}

	t.Run("npm install", func(t *testing.T) {
		_, doc := getFullPackument(t, g.URL+"e2e-big")
		latest := doc.DistTags["latest"]
		sb := newSandbox(t)
		project := sb.dir(t, "project")
		writeConsumer(t, project)
		mustSucceed(t, sb.npm(t, project, g.URL, "install", "e2e-big"))
		checkInstalledVersion(t, project, "e2e-big", latest)
		if latest != "1.0.0" {
			if got := filesUnder(t, filepath.Join(project, "node_modules", "e2e-big")); !slices.Contains(got, "blob.bin") {
				t.Errorf("e2e-big@%s installed without its blob: %v", latest, got)
			}
		}
		var versions []string
		npmViewJSON(t, sb, g.URL, "e2e-big", "versions", &versions)
		sort.Strings(versions)
		if want := []string{"1.0.0", "2.0.0", "3.0.0", "4.0.0", "5.0.0", "6.0.0", "7.0.0"}; !slices.Equal(versions, want) {
			t.Errorf("versions after the crashes and republishes: %v, want %v", versions, want)
		}
	})
}

// TestPublishYarnPnpm publishes with yarn 4 (yarn npm publish, with
// npmAuthToken and npmPublishRegistry) and pnpm (pnpm publish), and
// installs both packages with npm.
func TestPublishYarnPnpm(t *testing.T) {
	s := newPublishSetup(t)
	reg := s.g.URL

	t.Run("yarn npm publish", func(t *testing.T) {
		tool := toolPath(t, toolYarn4)
		sb := newSandbox(t)
		dir := sb.dir(t, "yarn-pkg")
		writePublishable(t, dir, "@e2e/yarn-pkg", "1.0.0", nil)
		writeFile(t, filepath.Join(dir, "yarn.lock"), "")
		writeFile(t, filepath.Join(dir, ".yarnrc.yml"), fmt.Sprintf("npmRegistryServer: %q\n"+
			"npmPublishRegistry: %q\n"+
			"npmAuthToken: %q\n"+
			"unsafeHttpWhitelist:\n  - \"127.0.0.1\"\n"+
			"nodeLinker: node-modules\n"+
			"enableGlobalCache: false\n"+
			"enableMirror: false\n"+
			"cacheFolder: %q\n"+
			"enableTelemetry: false\n",
			strings.TrimSuffix(reg, "/"), strings.TrimSuffix(reg, "/"), s.token, sb.dir(t, "yarn-cache")))
		mustSucceed(t, sb.node(t, dir, tool, "install"))
		r := sb.node(t, dir, tool, "npm", "publish")
		mustSucceed(t, r)
		if !strings.Contains(r.out, "Package archive published") {
			t.Errorf("yarn npm publish:\n%s", r)
		}
	})

	t.Run("pnpm publish", func(t *testing.T) {
		tool := toolPath(t, toolPnpm)
		sb := newSandbox(t)
		dir := sb.dir(t, "pnpm-pkg")
		writePublishable(t, dir, "e2e-pnpm-pkg", "1.0.0", nil)
		writeFile(t, filepath.Join(dir, ".npmrc"), npmrcKey(reg)+":_authToken="+s.token+"\n")
		r := sb.node(t, dir, tool, "publish", "--no-git-checks", "--registry", reg)
		mustSucceed(t, r)
		if !strings.Contains(r.out, "+ e2e-pnpm-pkg@1.0.0") {
			t.Errorf("pnpm publish:\n%s", r)
		}
	})

	t.Run("npm installs both", func(t *testing.T) {
		sb := newSandbox(t)
		project := sb.dir(t, "project")
		writeConsumer(t, project)
		mustSucceed(t, sb.npm(t, project, reg, "install", "@e2e/yarn-pkg", "e2e-pnpm-pkg", "ms@2.1.3"))
		for name, version := range map[string]string{"@e2e/yarn-pkg": "1.0.0", "e2e-pnpm-pkg": "1.0.0", "ms": "2.1.3"} {
			checkInstalledVersion(t, project, name, version)
		}
		for _, name := range []string{"@e2e/yarn-pkg", "e2e-pnpm-pkg"} {
			if got := sb.installedValue(t, project, name); got != name+"@1.0.0" {
				t.Errorf("require(%q) = %q", name, got)
			}
		}
	})
}

// TestPublishBuildMetadata publishes with npm a package whose package.json
// version carries build metadata. npm cleans the version it publishes
// ("1.0.0+build.7" becomes "1.0.0", with a warning) but packs package.json
// as it is, so the tarball says "1.0.0+build.7": the public registry holds
// such packages (the recorded @hot-loader/react-dom 17.0.2 and
// @parcel/* 2.0.0-canary.1875 tarballs, see buildmeta_test.go).
func TestPublishBuildMetadata(t *testing.T) {
	s := newPublishSetup(t)
	reg := s.g.URL
	sb := s.publisher(t)
	pkg := sb.dir(t, "bm")
	writePublishable(t, pkg, "e2e-bm", "1.0.0+build.7", nil)
	r := sb.npm(t, pkg, reg, "publish")
	if !strings.Contains(r.out, `"version" was cleaned and set to "1.0.0"`) {
		t.Logf("npm no longer cleans the version it publishes:\n%s", r)
	}
	mustSucceed(t, r)

	reader := newSandbox(t)
	project := reader.dir(t, "project")
	writeConsumer(t, project)
	mustSucceed(t, reader.npm(t, project, reg, "install", "e2e-bm"))
	m := readManifest(t, filepath.Join(project, "node_modules", "e2e-bm"))
	if m.Name != "e2e-bm" || !sameVersion(m.Version, "1.0.0") {
		t.Errorf("installed %s@%s, want e2e-bm@1.0.0+build.7", m.Name, m.Version)
	}
}

// TestPublishTooLarge publishes with npm packages over publish.max_size:
// one whose request body still fits what npmgate reads (the tarball is
// refused after decoding) and one whose body is over that too (refused
// while it streams in). npm shows a 413 with npmgate's reason both times,
// and nothing is published.
func TestPublishTooLarge(t *testing.T) {
	ps := newPublishSetupWith(t, startUpstream(t, ""), publishConfig+"publish:\n  max_size: 256KiB\n")
	g, token := ps.g, ps.token
	sb := newSandbox(t)
	sb.setUserrc(t, npmrcKey(g.URL)+":_authToken="+token)

	for _, c := range []struct {
		name string
		size int
	}{
		{"tarball over the limit", 600 << 10},    // body about 0.8 MB: read, decoded, refused
		{"request body over the limit", 6 << 20}, // body about 8 MB: over 256KiB/3*4 + 4MiB
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "e2e-" + strings.ReplaceAll(c.name, " ", "-")
			dir := sb.dir(t, name)
			writePublishable(t, dir, name, "1.0.0", nil)
			// Incompressible, so the packed tarball is as large.
			writeFile(t, filepath.Join(dir, "blob.bin"), string(randomBytes(c.size)))
			r := sb.npm(t, dir, g.URL, "publish")
			mustFailWith(t, r, "npm error code E413", "publish.max_size")
			if st, _ := getFullPackument(t, g.URL+name); st != 404 {
				t.Errorf("GET %s after the refused publish: %d, want 404", name, st)
			}
		})
	}
	waitNoTmp(t, g.Data)
}
