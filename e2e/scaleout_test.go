package e2e

// Scale-out: three npmgate replicas on one PostgreSQL and one S3-compatible
// bucket (Versity Gateway), both real servers on loopback started by
// internal/testservices, each replica with its own data directory (its
// local cache). What one replica does, the others see at once.

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/npmgate/npmgate/internal/testservices"
)

// scaleoutConfig: one public feed owning @corp, a database and a bucket.
// Replicas 1 and 2 read the bucket's keys from the file; replica 3 from
// the standard AWS environment variables (KEYS is replaced by nothing).
const scaleoutConfig = `
cache:
  max_age: 10m
connectors:
  npmjs:
    url: UPSTREAM
    retries: 0
feeds:
  npm:
    default: true
    connectors: [npmjs]
    owned_scopes: ["@corp"]
database:
  url: DBURL
storage:
  s3:
    endpoint: S3ENDPOINT
    region: S3REGION
    bucket: S3BUCKET
    path_style: true
KEYS`

// cluster is three replicas on one database and bucket.
type cluster struct {
	up       *upstream
	cfg      string // configuration with the bucket's keys, for the CLI
	s3       testservices.S3Server
	dbURL    string
	replicas []*gate
	env      [][]string // each replica's extra environment
	cfgs     []string   // each replica's configuration file
}

func startCluster(t *testing.T, upstreamURL string) *cluster {
	t.Helper()
	c := &cluster{dbURL: testservices.Postgres(t), s3: testservices.S3(t)}
	write := func(keys string) string {
		cfg := scaleoutConfig
		for old, new := range map[string]string{
			"UPSTREAM": upstreamURL, "DBURL": c.dbURL, "S3ENDPOINT": c.s3.Endpoint,
			"S3REGION": c.s3.Region, "S3BUCKET": c.s3.Bucket, "KEYS": keys,
		} {
			cfg = strings.ReplaceAll(cfg, old, new)
		}
		file := t.TempDir() + "/npmgate.yaml"
		writeFile(t, file, cfg)
		return file
	}
	c.cfg = write(fmt.Sprintf("    access_key: %s\n    secret_key: %s\n", c.s3.AccessKey, c.s3.SecretKey))
	fromEnv := write("")
	out := gateCLI(t, c.cfg, t.TempDir(), "", "migrate")
	t.Logf("npmgate migrate: %s", strings.TrimSpace(out))
	c.cfgs = []string{c.cfg, c.cfg, fromEnv}
	c.env = [][]string{nil, nil, {"AWS_ACCESS_KEY_ID=" + c.s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + c.s3.SecretKey}}
	for i := range 3 {
		c.replicas = append(c.replicas, c.start(t, i, t.TempDir()))
	}
	return c
}

// start runs replica i on data.
func (c *cluster) start(t *testing.T, i int, data string) *gate {
	t.Helper()
	return startGateWith(t, data, c.env[i], "--config", c.cfgs[i], "--listen", "127.0.0.1:0", "--data", data)
}

// token makes a user and a token with the CLI, which writes to the
// database: every replica accepts it at once, with no wait.
func (c *cluster) token(t *testing.T, user, password string) string {
	t.Helper()
	data := t.TempDir()
	gateCLI(t, c.cfg, data, password+"\n", "user", "add", user)
	secret := strings.TrimSpace(gateCLI(t, c.cfg, data, "", "token", "create", "--user", user))
	for i, g := range c.replicas {
		if r := get(t, g.URL+"-/whoami", "Authorization", "Bearer "+secret); r.status != 200 {
			t.Fatalf("replica %d: whoami with a token just created: %d %s", i+1, r.status, r.body)
		}
	}
	return secret
}

// bucket is a client of the cluster's bucket, to look at what is stored.
func (c *cluster) bucket(t *testing.T) *minio.Client {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimPrefix(c.s3.Endpoint, "http://"), "https://")
	mc, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(c.s3.AccessKey, c.s3.SecretKey, ""),
		Region:       c.s3.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// objects lists the keys stored under prefix, with their sizes.
func (c *cluster) objects(t *testing.T, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for o := range c.bucket(t).ListObjects(context.Background(), c.s3.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing the bucket: %v", o.Err)
		}
		out[o.Key] = o.Size
	}
	return out
}

func abbreviatedLatest(t *testing.T, url string) string {
	t.Helper()
	r := get(t, url, "Accept", "application/vnd.npm.install-v1+json")
	if r.status != 200 {
		return fmt.Sprintf("status %d", r.status)
	}
	var doc struct {
		DistTags map[string]string `json:"dist-tags"`
	}
	json.Unmarshal(r.body, &doc)
	return doc.DistTags["latest"]
}

// TestScaleOutPublishInstall publishes with npm through replica 1 and
// installs through replica 3 at once; a later publish through replica 2
// reaches replica 3's memory tier through the database's notification,
// not after the ten-minute max age.
func TestScaleOutPublishInstall(t *testing.T) {
	up := startUpstream(t, "")
	c := startCluster(t, up.URL)
	r1, r2, r3 := c.replicas[0], c.replicas[1], c.replicas[2]
	token := c.token(t, "alice", alicePassword)

	publisher := newSandbox(t)
	publisher.setUserrc(t, npmrcKey(r1.URL)+":_authToken="+token)
	lib := publisher.dir(t, "corp-lib")
	writePublishable(t, lib, "@corp/lib", "1.0.0", nil)
	mustSucceed(t, publisher.npm(t, lib, r1.URL, "publish"))

	reader := newSandbox(t)
	project := reader.dir(t, "consumer")
	writeConsumer(t, project)
	mustSucceed(t, reader.npm(t, project, r3.URL, "install", "@corp/lib", "debug@4.4.3"))
	checkInstalledVersion(t, project, "@corp/lib", "1.0.0")
	checkInstalledVersion(t, project, "debug", "4.4.3")
	if got := reader.installedValue(t, project, "@corp/lib"); got != "@corp/lib@1.0.0" {
		t.Errorf("require(@corp/lib) through replica 3 = %q", got)
	}

	// Replica 3 now holds @corp/lib in memory. A publish through replica 2
	// must replace it there within a second or so.
	if got := abbreviatedLatest(t, r3.URL+"@corp%2flib"); got != "1.0.0" {
		t.Fatalf("replica 3: latest = %q before the second publish", got)
	}
	tgz := npmTarball(t, "@corp/lib", "1.1.0")
	if r, err := putPublish(r2.URL+"@corp%2flib", npmPublishBody(t, "@corp/lib", "1.1.0", "latest", tgz), "Authorization", "Bearer "+token); err != nil || r.status != 200 {
		t.Fatalf("publish 1.1.0 through replica 2: %d %s %v", r.status, r.body, err)
	}
	took := waitUntil(t, 5*time.Second, "replica 3 sees 1.1.0 as latest", func() bool {
		return abbreviatedLatest(t, r3.URL+"@corp%2flib") == "1.1.0"
	})
	t.Logf("a publish through replica 2 reached replica 3's memory tier in %s", took.Round(time.Millisecond))
	if r := get(t, r3.URL+"@corp/lib/-/lib-1.1.0.tgz"); r.status != 200 || !bytes.Equal(r.body, tgz) {
		t.Errorf("replica 3: tarball of 1.1.0: %d, %d bytes", r.status, len(r.body))
	}
	// dist-tag changes travel the same way.
	mustSucceed(t, publisher.npm(t, lib, r1.URL, "dist-tag", "add", "@corp/lib@1.0.0", "latest"))
	waitUntil(t, 5*time.Second, "replica 3 sees the dist-tag moved back to 1.0.0", func() bool {
		return abbreviatedLatest(t, r3.URL+"@corp%2flib") == "1.0.0"
	})
	// Published bytes are in the bucket, content-addressed.
	sum := sha512.Sum512(tgz)
	key := fmt.Sprintf("tarballs/sha512/%x/%x.tgz", sum[:1], sum[:])
	if objs := c.objects(t, "tarballs/sha512/"); objs[key] != int64(len(tgz)) {
		t.Errorf("bucket: %s has %d bytes, want %d (objects: %v)", key, objs[key], len(tgz), objs)
	}
}

// TestScaleOutConcurrentPublishes sends 3 × 20 publishes of distinct
// versions of one package through all three replicas at once: all 60 land.
func TestScaleOutConcurrentPublishes(t *testing.T) {
	up := startUpstream(t, "")
	c := startCluster(t, up.URL)
	token := c.token(t, "alice", alicePassword)
	const perReplica = 20
	type answer struct {
		status int
		body   string
		err    error
	}
	n := perReplica * len(c.replicas)
	tarballs := make([][]byte, n)
	answers := make([]answer, n)
	bodies := make([][]byte, n)
	for i := range n {
		tarballs[i] = npmTarball(t, "e2e-scaled", fmt.Sprintf("2.0.%d", i))
		bodies[i] = npmPublishBody(t, "e2e-scaled", fmt.Sprintf("2.0.%d", i), "latest", tarballs[i])
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		g := c.replicas[i%len(c.replicas)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := putPublish(g.URL+"e2e-scaled", bodies[i], "Authorization", "Bearer "+token)
			answers[i] = answer{r.status, string(r.body), err}
		}()
	}
	close(start)
	wg.Wait()
	landed := 0
	for i, a := range answers {
		if a.err != nil || a.status != 200 {
			t.Errorf("PUT e2e-scaled@2.0.%d through replica %d: %d %s %v", i, i%3+1, a.status, a.body, a.err)
		} else {
			landed++
		}
	}
	t.Logf("%d/%d publishes landed", landed, n)
	for ri, g := range c.replicas {
		// Every replica learnt of the last publish by notification: poll
		// until its memory tier has caught up, then check every version.
		var doc fullPackument
		waitUntil(t, 5*time.Second, fmt.Sprintf("replica %d lists %d versions", ri+1, n), func() bool {
			_, doc = getFullPackument(t, g.URL+"e2e-scaled")
			return len(doc.Versions) == n
		})
		for i, tgz := range tarballs {
			v := fmt.Sprintf("2.0.%d", i)
			if pv := doc.Versions[v]; pv.Dist.Integrity != sriOf(tgz) {
				t.Errorf("replica %d: %s has integrity %q, want %q", ri+1, v, pv.Dist.Integrity, sriOf(tgz))
			}
		}
		// Every replica serves every tarball (most from the bucket).
		for i := ri; i < n; i += 7 {
			u := g.URL + fmt.Sprintf("e2e-scaled/-/e2e-scaled-2.0.%d.tgz", i)
			if r := get(t, u); r.status != 200 || !bytes.Equal(r.body, tarballs[i]) {
				t.Errorf("replica %d: GET %s: %d, %d bytes", ri+1, u, r.status, len(r.body))
			}
		}
	}
	sb := newSandbox(t)
	project := sb.dir(t, "project")
	writeConsumer(t, project)
	mustSucceed(t, sb.npm(t, project, c.replicas[2].URL, "install", "e2e-scaled@2.0.41"))
	checkInstalledVersion(t, project, "e2e-scaled", "2.0.41")
}

// TestScaleOutCredentials: a token revoked through replica 2 is refused by
// replica 1 on the very next request; a user added with the CLI logs in on
// any replica.
func TestScaleOutCredentials(t *testing.T) {
	up := startUpstream(t, "")
	c := startCluster(t, up.URL)
	token := c.token(t, "alice", alicePassword)
	r1, r2, r3 := c.replicas[0], c.replicas[1], c.replicas[2]

	// npm login through replica 3 makes a second token, accepted by replica 1.
	body := mustJSON(t, map[string]string{"_id": "org.couchdb.user:alice", "name": "alice", "password": alicePassword, "type": "user"})
	lr, err := putPublish(r3.URL+"-/user/org.couchdb.user:alice", body)
	if err != nil || lr.status != 201 {
		t.Fatalf("login through replica 3: %d %s %v", lr.status, lr.body, err)
	}
	var lt struct {
		Token string `json:"token"`
	}
	json.Unmarshal(lr.body, &lt)
	if r := get(t, r1.URL+"-/whoami", "Authorization", "Bearer "+lt.Token); r.status != 200 {
		t.Fatalf("replica 1: whoami with the token from replica 3's login: %d %s", r.status, r.body)
	}

	// Revoke the CLI's token through replica 2; replica 1 refuses it next.
	if r := get(t, r1.URL+"-/whoami", "Authorization", "Bearer "+token); r.status != 200 {
		t.Fatalf("replica 1: whoami before revocation: %d %s", r.status, r.body)
	}
	rv := do(t, http.MethodDelete, r2.URL+"-/npm/v1/tokens/token/"+tokenKeyOf(token), "Authorization", "Bearer "+lt.Token)
	if rv.status != 204 && rv.status != 200 {
		t.Fatalf("revoke through replica 2: %d %s", rv.status, rv.body)
	}
	for i, g := range c.replicas {
		if r := get(t, g.URL+"-/whoami", "Authorization", "Bearer "+token); r.status != 401 {
			t.Errorf("replica %d: whoami with the revoked token right after revocation: %d %s, want 401", i+1, r.status, r.body)
		}
	}
	if r := get(t, r1.URL+"-/whoami", "Authorization", "Bearer "+lt.Token); r.status != 200 {
		t.Errorf("replica 1: the other token stopped working: %d %s", r.status, r.body)
	}
}

// slowUpstream serves one package whose tarball trickles out, and says
// when a client has received the first part of it.
type slowUpstream struct {
	*httptest.Server
	tgz      []byte
	sent     atomic.Int64
	requests atomic.Int64
}

func startSlowUpstream(t *testing.T) *slowUpstream {
	t.Helper()
	u := &slowUpstream{tgz: bigTarball(t, "e2e-slow", "1.0.0", 4<<20)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/e2e-slow":
			w.Header().Set("Content-Type", "application/json")
			w.Write(mustJSON(t, map[string]any{
				"name": "e2e-slow", "dist-tags": map[string]string{"latest": "1.0.0"},
				"versions": map[string]any{"1.0.0": map[string]any{
					"name": "e2e-slow", "version": "1.0.0",
					"dist": map[string]string{"integrity": sriOf(u.tgz), "tarball": u.URL + "/e2e-slow/-/e2e-slow-1.0.0.tgz"},
				}},
			}))
		case "/e2e-slow/-/e2e-slow-1.0.0.tgz":
			u.requests.Add(1)
			w.Header().Set("Content-Length", fmt.Sprint(len(u.tgz)))
			for off := 0; off < len(u.tgz); off += 64 << 10 {
				if _, err := w.Write(u.tgz[off:min(off+64<<10, len(u.tgz))]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				u.sent.Add(64 << 10)
				time.Sleep(15 * time.Millisecond)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// TestScaleOutKillMidDownload kills a replica with SIGKILL in the middle
// of a tarball download: the bucket holds no part of it, another replica
// serves the whole verified tarball and shares it, and a publish that was
// answered before the kill is not lost.
func TestScaleOutKillMidDownload(t *testing.T) {
	up := startSlowUpstream(t)
	c := startCluster(t, up.URL)
	token := c.token(t, "alice", alicePassword)
	r1, r2 := c.replicas[0], c.replicas[1]

	published := npmTarball(t, "@corp/kept", "1.0.0")
	if r, err := putPublish(r1.URL+"@corp%2fkept", npmPublishBody(t, "@corp/kept", "1.0.0", "latest", published), "Authorization", "Bearer "+token); err != nil || r.status != 200 {
		t.Fatalf("publish through replica 1: %d %s %v", r.status, r.body, err)
	}

	tarballURL := "e2e-slow/-/e2e-slow-1.0.0.tgz"
	got := make(chan error, 1)
	go func() {
		_, err := fetch(http.MethodGet, r1.URL+tarballURL)
		got <- err
	}()
	waitUntil(t, 10*time.Second, "replica 1 has received 1 MiB of the tarball", func() bool { return up.sent.Load() >= 1<<20 })
	r1.signal(t, syscall.SIGKILL)
	r1.wait(t)
	if err := <-got; err == nil {
		t.Errorf("the client of the killed replica got a complete answer")
	}
	if objs := c.objects(t, "tarballs/"); len(objs) != 1 {
		t.Errorf("bucket after the kill: %v, want only the published tarball", objs)
	}
	if inc := incompleteUploads(t, c); inc != 0 {
		t.Errorf("bucket after the kill: %d unfinished multipart uploads", inc)
	}

	if r := get(t, r2.URL+"@corp/kept/-/kept-1.0.0.tgz"); r.status != 200 || !bytes.Equal(r.body, published) {
		t.Errorf("replica 2: the package published before the kill: %d, %d bytes", r.status, len(r.body))
	}
	r := get(t, r2.URL+tarballURL)
	if r.status != 200 || !bytes.Equal(r.body, up.tgz) {
		t.Fatalf("replica 2: GET the tarball: %d, %d bytes of %d", r.status, len(r.body), len(up.tgz))
	}
	sum := sha512.Sum512(up.tgz)
	key := fmt.Sprintf("tarballs/sha512/%x/%x.tgz", sum[:1], sum[:])
	waitUntil(t, 10*time.Second, "the tarball is shared in the bucket", func() bool {
		return c.objects(t, "tarballs/")[key] == int64(len(up.tgz))
	})
	// Replica 1 comes back on its data directory and serves the tarball
	// from the bucket, without asking upstream again.
	before := up.requests.Load()
	g := c.start(t, 0, r1.Data)
	if r := get(t, g.URL+tarballURL); r.status != 200 || !bytes.Equal(r.body, up.tgz) {
		t.Errorf("restarted replica 1: GET the tarball: %d, %d bytes", r.status, len(r.body))
	}
	if n := up.requests.Load() - before; n != 0 {
		t.Errorf("restarted replica 1 downloaded the tarball from upstream %d times; the bucket has it", n)
	}
}

func incompleteUploads(t *testing.T, c *cluster) int {
	t.Helper()
	n := 0
	for u := range c.bucket(t).ListIncompleteUploads(context.Background(), c.s3.Bucket, "", true) {
		if u.Err != nil {
			t.Logf("listing unfinished uploads: %v", u.Err)
			return 0
		}
		n++
	}
	return n
}

// TestScaleOutUpstreamOncePerReplica: 3 replicas × 10 clients asking for
// one cold packument and one cold tarball at once cost upstream at most
// one request each per replica.
func TestScaleOutUpstreamOncePerReplica(t *testing.T) {
	up := startUpstream(t, "")
	c := startCluster(t, up.URL)
	up.ResetStats()
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for _, g := range c.replicas {
		for range 10 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if r, err := fetch(http.MethodGet, g.URL+"debug"); err != nil || r.status != 200 {
					errs <- fmt.Errorf("GET debug: %d %v", r.status, err)
				}
			}()
			go func() {
				defer wg.Done()
				if r, err := fetch(http.MethodGet, g.URL+"ms/-/ms-2.1.3.tgz"); err != nil || r.status != 200 {
					errs <- fmt.Errorf("GET ms-2.1.3.tgz: %d %v", r.status, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	docs, tarballs := 0, 0
	for _, p := range up.Requests().Paths {
		switch {
		case strings.HasSuffix(p, "/debug"):
			docs++
		case strings.HasSuffix(p, "/ms-2.1.3.tgz"):
			tarballs++
		}
	}
	t.Logf("upstream requests: %d for the packument, %d for the tarball", docs, tarballs)
	if docs > 3 || tarballs > 3 {
		t.Errorf("upstream saw %d packument and %d tarball requests from 3 replicas, want at most 3 each\n%v", docs, tarballs, up.Requests().Paths)
	}
	// The replicas that downloaded the tarball shared it, and say so.
	uploads := func() int {
		n := 0
		for _, g := range c.replicas {
			for _, line := range strings.Split(string(get(t, g.URL+"metrics").body), "\n") {
				if v, ok := strings.CutPrefix(line, `npmgate_shared_uploads_total{result="ok"} `); ok {
					k, _ := strconv.Atoi(v)
					n += k
				}
			}
		}
		return n
	}
	waitUntil(t, 10*time.Second, "a shared upload is counted", func() bool { return uploads() >= 1 })
	if n := uploads(); n > tarballs {
		t.Errorf("npmgate_shared_uploads_total{result=\"ok\"} over the replicas: %d, for %d downloads", n, tarballs)
	}
}

// TestScaleOutReadiness: a replica is not ready while its database or its
// bucket is unreachable, and is ready again once they are back.
func TestScaleOutReadiness(t *testing.T) {
	up := startUpstream(t, "")
	c := startCluster(t, up.URL)
	g := c.replicas[0]
	ready := func() int { return get(t, g.URL+"readyz").status }

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, strings.Replace(c.dbURL, "/"+dbName(c.dbURL), "/postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	db := pgx.Identifier{dbName(c.dbURL)}.Sanitize()
	mustExec := func(sql string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS false")
	mustExec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", dbName(c.dbURL))
	waitUntil(t, 10*time.Second, "readyz fails without the database", func() bool { return ready() == 503 })
	if r := get(t, g.URL+"readyz"); !strings.Contains(string(r.body), "database") {
		t.Errorf("readyz without the database says %s", r.body)
	}
	mustExec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS true")
	waitUntil(t, 10*time.Second, "readyz passes with the database back", func() bool { return ready() == 200 })

	// The bucket goes away (emptied and removed), then comes back.
	mc := c.bucket(t)
	for o := range mc.ListObjects(ctx, c.s3.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err == nil {
			mc.RemoveObject(ctx, c.s3.Bucket, o.Key, minio.RemoveObjectOptions{})
		}
	}
	if err := mc.RemoveBucket(ctx, c.s3.Bucket); err != nil {
		t.Fatalf("removing the bucket: %v", err)
	}
	waitUntil(t, 10*time.Second, "readyz fails without the bucket", func() bool { return ready() == 503 })
	if r := get(t, g.URL+"readyz"); !strings.Contains(string(r.body), "bucket") {
		t.Errorf("readyz without the bucket says %s", r.body)
	}
	if err := mc.MakeBucket(ctx, c.s3.Bucket, minio.MakeBucketOptions{Region: c.s3.Region}); err != nil {
		t.Fatalf("making the bucket again: %v", err)
	}
	waitUntil(t, 10*time.Second, "readyz passes with the bucket back", func() bool { return ready() == 200 })
}

// dbName is the database a postgres:// URL names.
func dbName(url string) string {
	rest := url[strings.LastIndex(url, "/")+1:]
	name, _, _ := strings.Cut(rest, "?")
	return name
}
