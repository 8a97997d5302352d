package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/testservices"
	"github.com/npmgate/npmgate/pgstore"
)

// ownerConfig is publishConfig with a feed admin, carol, and the names
// acme-* claimed for the feed.
const ownerConfig = publishConfig + `    owned_names: ["acme-*"]
    access:
      admin: [carol]
`

// ownerUpstream is a registry with a public escalade and a squatter's
// acme-tool at 99.0.0.
func ownerUpstream(t *testing.T) (*upstream, *fltRegistry) {
	t.Helper()
	reg := fltWriteRegistry(t,
		fltPkg{name: "escalade", versions: []fltVersion{{"3.1.1", 400 * fltDay, nil}, {"3.1.2", 300 * fltDay, nil}},
			tags: map[string]string{"latest": "3.1.2"}},
		fltPkg{name: "acme-tool", versions: []fltVersion{{"99.0.0", 30 * fltDay, nil}},
			tags: map[string]string{"latest": "99.0.0"}},
	)
	return startUpstream(t, reg.dir), reg
}

// user adds a user to s's npmgate and returns a sandbox whose npm is
// logged in as them.
func (s *publishSetup) user(t *testing.T, name string) *sandbox {
	t.Helper()
	password := name + "-e2e-Passw0rd!"
	s.watch.addPassword(name, password)
	addGateUser(t, s.cfg, s.g.Data, name, password)
	token := cliToken(t, s.g, s.cfg, "--user", name)
	s.watch.add(name+"'s token", token)
	sb := newSandbox(t)
	sb.setUserrc(t, npmrcKey(s.g.URL)+":_authToken="+token)
	return sb
}

// TestOwnershipEscaladeTakeover: a user with publish rights tries to
// publish escalade@3.2.0, a name upstream serves, with a postinstall
// script. npm gets a 403 that names the connector and the fix, and the
// upstream package is untouched: its versions, its tarball bytes, and
// what npm installs.
func TestOwnershipEscaladeTakeover(t *testing.T) {
	up, reg := ownerUpstream(t)
	s := newPublishSetupWith(t, up, ownerConfig)
	sb := s.publisher(t)
	pkg := sb.dir(t, "escalade")
	writePublishable(t, pkg, "escalade", "3.2.0", map[string]any{
		"scripts": map[string]string{"postinstall": "node -e \"require('fs').writeFileSync('/tmp/pwned','')\""}})
	r := sb.npm(t, pkg, s.g.URL, "publish")
	mustFailWith(t, r, "npm error code E403", `served by connector`, "npmjs", "feeds.npm.owned_names")

	if _, err := os.Stat(filepath.Join(s.g.Data, "local", "npm", "escalade.json")); err == nil {
		t.Error("the refused publish stored a local document")
	}
	status, doc := getFullPackument(t, s.g.URL+"escalade")
	var versions []string
	for v := range doc.Versions {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	if status != 200 || !slices.Equal(versions, []string{"3.1.1", "3.1.2"}) || doc.DistTags["latest"] != "3.1.2" {
		t.Errorf("escalade after the attempt: %d versions %v tags %v, want upstream's 3.1.1 and 3.1.2", status, versions, doc.DistTags)
	}
	for _, v := range []string{"3.1.1", "3.1.2"} {
		got := get(t, s.g.URL+"escalade/-/escalade-"+v+".tgz")
		if got.status != 200 || !bytes.Equal([]byte(got.body), reg.tarballs["escalade@"+v]) {
			t.Errorf("escalade-%s.tgz through the feed: %d, not upstream's bytes", v, got.status)
		}
	}
	if got := get(t, s.g.URL+"escalade/-/escalade-3.2.0.tgz"); got.status != 404 {
		t.Errorf("escalade-3.2.0.tgz: %d, want 404", got.status)
	}
	reader := newSandbox(t)
	project := reader.dir(t, "project")
	writeConsumer(t, project)
	mustSucceed(t, reader.npm(t, project, s.g.URL, "install", "escalade"))
	checkInstalledVersion(t, project, "escalade", "3.1.2")
}

// TestOwnershipClaimedSquatterName: upstream has a squatter's
// acme-tool@99.0.0; the feed claims acme-* in owned_names, so a plain
// npm publish of acme-tool@1.0.0 succeeds (npm's check before publishing
// sees only the local name), installs, and upstream never hears of it.
func TestOwnershipClaimedSquatterName(t *testing.T) {
	up, _ := ownerUpstream(t)
	s := newPublishSetupWith(t, up, ownerConfig)
	sb := s.publisher(t)
	pkg := sb.dir(t, "acme-tool")
	writePublishable(t, pkg, "acme-tool", "1.0.0", nil)
	r := sb.npm(t, pkg, s.g.URL, "publish")
	mustSucceed(t, r)

	reader := newSandbox(t)
	project := reader.dir(t, "project")
	writeConsumer(t, project)
	mustSucceed(t, reader.npm(t, project, s.g.URL, "install", "acme-tool"))
	checkInstalledVersion(t, project, "acme-tool", "1.0.0")
	if v := reader.installedValue(t, project, "acme-tool"); v != "acme-tool@1.0.0" {
		t.Errorf("require(\"acme-tool\") = %q: not the local package", v)
	}
	if p := upstreamPathsWith(s.up, "acme"); len(p) > 0 {
		t.Errorf("upstream was asked for the claimed name: %v", p)
	}
}

// TestOwnershipNPM goes through npm owner ls/add/rm, and shows that a
// user with publish rights on the feed who does not maintain a package
// can neither publish it, tag it, deprecate it, unpublish it nor change
// its owners, while the feed admin can.
func TestOwnershipNPM(t *testing.T) {
	s2 := newPublishSetupWith(t, startUpstream(t, ""), ownerConfig)
	reg := s2.g.URL
	alice := s2.publisher(t)
	bob := s2.user(t, "bob")
	carol := s2.user(t, "carol")
	pkg := alice.dir(t, "e2e-owned")
	writePublishable(t, pkg, "e2e-owned", "1.0.0", nil)
	mustSucceed(t, alice.npm(t, pkg, reg, "publish"))
	ownerLs := func(t *testing.T) []string {
		t.Helper()
		r := alice.npm(t, alice.dir(t, "ls"), reg, "owner", "ls", "e2e-owned")
		mustSucceed(t, r)
		var names []string
		for _, l := range npmOutputLines(r.out) {
			names = append(names, strings.Fields(l)[0])
		}
		return names
	}
	if got := ownerLs(t); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("npm owner ls after the first publish: %v, want alice", got)
	}

	mustSucceed(t, alice.npm(t, alice.dir(t, "tag"), reg, "dist-tag", "add", "e2e-owned@1.0.0", "beta"))

	bobPkg := bob.dir(t, "e2e-owned")
	writePublishable(t, bobPkg, "e2e-owned", "1.1.0", nil)
	here := bob.dir(t, "elsewhere")
	refused := []struct {
		name string
		dir  string
		args []string
	}{
		{"publish", bobPkg, []string{"publish"}},
		{"dist-tag add", here, []string{"dist-tag", "add", "e2e-owned@1.0.0", "next"}},
		{"dist-tag rm", here, []string{"dist-tag", "rm", "e2e-owned", "beta"}},
		{"deprecate", here, []string{"deprecate", "e2e-owned", "do not use"}},
		{"unpublish a version", here, []string{"unpublish", "e2e-owned@1.0.0", "--force"}},
		{"unpublish the package", here, []string{"unpublish", "e2e-owned", "--force"}},
		{"owner add", here, []string{"owner", "add", "bob", "e2e-owned"}},
	}
	stored := filepath.Join(s2.g.Data, "local", "npm", "e2e-owned.json")
	for _, c := range refused {
		t.Run("bob "+c.name, func(t *testing.T) {
			before, _ := os.ReadFile(stored)
			r := bob.npm(t, c.dir, reg, c.args...)
			mustFailWith(t, r, "403")
			if !strings.Contains(r.out, "alice") {
				t.Errorf("the refusal does not say who may:\n%s", r)
			}
			if after, _ := os.ReadFile(stored); !bytes.Equal(before, after) {
				t.Error("a refused change changed the stored package")
			}
		})
	}

	t.Run("owner add and rm", func(t *testing.T) {
		mustFailWith(t, alice.npm(t, here, reg, "owner", "add", "nobody", "e2e-owned"), "404")
		mustSucceed(t, alice.npm(t, here, reg, "owner", "add", "bob", "e2e-owned"))
		if got := ownerLs(t); !slices.Equal(got, []string{"alice", "bob"}) {
			t.Errorf("npm owner ls after add: %v", got)
		}
		mustSucceed(t, bob.npm(t, bobPkg, reg, "publish"))
		mustSucceed(t, bob.npm(t, here, reg, "owner", "rm", "alice", "e2e-owned"))
		if got := ownerLs(t); !slices.Equal(got, []string{"bob"}) {
			t.Errorf("npm owner ls after rm: %v", got)
		}
		mustFailWith(t, alice.npm(t, here, reg, "dist-tag", "add", "e2e-owned@1.0.0", "next"), "403")
	})

	t.Run("admin", func(t *testing.T) {
		dir := carol.dir(t, "admin")
		mustSucceed(t, carol.npm(t, dir, reg, "dist-tag", "add", "e2e-owned@1.0.0", "next"))
		mustSucceed(t, carol.npm(t, dir, reg, "deprecate", "e2e-owned@1.0.0", "old"))
		mustSucceed(t, carol.npm(t, dir, reg, "owner", "add", "alice", "e2e-owned"))
		mustSucceed(t, carol.npm(t, dir, reg, "unpublish", "e2e-owned@1.0.0", "--force"))
		var versions []string
		npmViewJSON(t, carol, reg, "e2e-owned", "versions", &versions)
		if !slices.Equal(versions, []string{"1.1.0"}) {
			t.Errorf("versions after the admin's unpublish: %v", versions)
		}
		mustSucceed(t, carol.npm(t, dir, reg, "unpublish", "e2e-owned", "--force"))
		if st, _ := getFullPackument(t, reg+"e2e-owned"); st != 404 {
			t.Errorf("after the admin unpublished the package: %d", st)
		}
	})
}

// TestStarsNPM: npm star, npm stars and npm unstar, by a user who may
// read the feed; a connector's package is not starred here.
func TestStarsNPM(t *testing.T) {
	s := newPublishSetup(t)
	reg := s.g.URL
	alice := s.publisher(t)
	pkg := alice.dir(t, "e2e-starred")
	writePublishable(t, pkg, "e2e-starred", "1.0.0", nil)
	mustSucceed(t, alice.npm(t, pkg, reg, "publish"))
	bob := s.user(t, "bob")
	dir := bob.dir(t, "stars")

	r := bob.npm(t, dir, reg, "star", "e2e-starred")
	mustSucceed(t, r)
	r = bob.npm(t, dir, reg, "stars")
	mustSucceed(t, r)
	if !slices.Contains(npmOutputLines(r.out), "e2e-starred") {
		t.Errorf("npm stars after npm star:\n%s", r)
	}
	var users map[string]bool
	npmViewJSON(t, bob, reg, "e2e-starred", "users", &users)
	if !users["bob"] || len(users) != 1 {
		t.Errorf("users after npm star: %v", users)
	}
	mustSucceed(t, alice.npm(t, dir, reg, "star", "e2e-starred"))
	mustSucceed(t, bob.npm(t, dir, reg, "unstar", "e2e-starred"))
	r = bob.npm(t, dir, reg, "stars")
	mustSucceed(t, r)
	if slices.Contains(npmOutputLines(r.out), "e2e-starred") || !strings.Contains(r.out, "has not starred any packages") {
		t.Errorf("npm stars after npm unstar:\n%s", r)
	}
	users = nil // Unmarshal merges into a map it is given
	npmViewJSON(t, bob, reg, "e2e-starred", "users", &users)
	if !users["alice"] || users["bob"] {
		t.Errorf("users after bob's unstar: %v, want alice's star kept", users)
	}
	mustFailWith(t, bob.npm(t, dir, reg, "star", "ms"), "404", "only local packages can be starred")
}

// legacyDoc is a package document as npmgate stored it before packages
// had maintainers: dave published 1.0.0, alice 1.1.0.
const legacyDoc = `{"packument":{"_id":"legacy","_rev":"2-ab","name":"legacy","dist-tags":{"latest":"1.1.0"},
"versions":{"1.1.0":{"name":"legacy","version":"1.1.0","_npmUser":{"name":"alice"},"dist":{"integrity":"sha512-AAAA","shasum":"00","tarball":"https://npmgate.invalid/legacy/-/legacy-1.1.0.tgz"}},
"1.0.0":{"name":"legacy","version":"1.0.0","_npmUser":{"name":"dave"},"dist":{"integrity":"sha512-AAAA","shasum":"00","tarball":"https://npmgate.invalid/legacy/-/legacy-1.0.0.tgz"}}},
"time":{"created":"2024-01-01T00:00:00.000Z","1.0.0":"2024-01-01T00:00:00.000Z","1.1.0":"2024-02-01T00:00:00.000Z"}},
"published":{"1.0.0":"sha512-AAAA","1.1.0":"sha512-AAAA"}}`

// TestOwnershipMigrationPostgres: a package document stored in
// PostgreSQL before packages had maintainers is owned by the publisher of
// its first version: npm owner ls shows dave, alice's publish is refused
// and dave's accepted.
func TestOwnershipMigrationPostgres(t *testing.T) {
	up := startUpstream(t, "")
	dbURL, s3 := testservices.Postgres(t), testservices.S3(t)
	cfg := scaleoutConfig
	for old, new := range map[string]string{
		"UPSTREAM": up.URL, "DBURL": dbURL, "S3ENDPOINT": s3.Endpoint, "S3REGION": s3.Region, "S3BUCKET": s3.Bucket,
		"KEYS": fmt.Sprintf("    access_key: %s\n    secret_key: %s\n", s3.AccessKey, s3.SecretKey),
	} {
		cfg = strings.ReplaceAll(cfg, old, new)
	}
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, cfg)
	gateCLI(t, file, t.TempDir(), "", "migrate")
	ctx := context.Background()
	db, err := pgstore.Open(ctx, config.Database{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Packages().Update(ctx, "npm", "legacy", func([]byte) ([]byte, error) { return []byte(legacyDoc), nil })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	g := startGateWith(t, data, nil, "--config", file, "--listen", "127.0.0.1:0", "--data", data)
	tokens := map[string]string{}
	for _, u := range []string{"alice", "dave"} {
		gateCLI(t, file, t.TempDir(), u+"-e2e-Passw0rd!\n", "user", "add", u)
		tokens[u] = strings.TrimSpace(gateCLI(t, file, t.TempDir(), "", "token", "create", "--user", u))
	}

	sb := newSandbox(t)
	sb.setUserrc(t, npmrcKey(g.URL)+":_authToken="+tokens["alice"])
	r := sb.npm(t, sb.dir(t, "ls"), g.URL, "owner", "ls", "legacy")
	mustSucceed(t, r)
	if lines := npmOutputLines(r.out); len(lines) != 1 || !strings.HasPrefix(lines[0], "dave ") {
		t.Errorf("npm owner ls of a document stored before maintainers: %q, want dave", lines)
	}
	publish := func(user string) response {
		t.Helper()
		body := npmPublishBody(t, "legacy", "1.2.0", "latest", npmTarball(t, "legacy", "1.2.0"))
		res, err := putPublish(g.URL+"legacy", body, "Authorization", "Bearer "+tokens[user])
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := publish("alice"); res.status != 403 || !strings.Contains(string(res.body), "dave") {
		t.Errorf("alice publishing dave's package: %d %s, want a 403 naming dave", res.status, res.body)
	}
	if res := publish("dave"); res.status != 200 {
		t.Errorf("dave publishing his package: %d %s", res.status, res.body)
	}
	var doc struct {
		Maintainers []struct{ Name string } `json:"maintainers"`
	}
	if r := get(t, g.URL+"legacy"); r.status != 200 || json.Unmarshal([]byte(r.body), &doc) != nil || len(doc.Maintainers) != 1 || doc.Maintainers[0].Name != "dave" {
		t.Errorf("legacy after dave's publish: %d %s", r.status, r.body)
	}
}
