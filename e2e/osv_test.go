package e2e

// The OSV database end to end (osv/, proxy/osv.go): npmgate reads the
// export from a URL (an httptest server serving testdata/osv/npm.zip),
// hides what its rules block from real clients, and answers npm audit,
// yarn 1's yarn audit, yarn 4's yarn npm audit and pnpm audit from it
// with nothing sent to the audit service (audit: local), or merged with
// the connector's answer (audit: local+connector).

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/npmgate/npmgate/osv"
)

const osvConfig = `
osv:
  source: OSVURL
connectors:
  npmjs:
    url: CONNECTOR
    retries: 0
feeds:
  npm:
    default: true
    connectors: [npmjs]
    audit: local
  both:
    connectors: [npmjs]
    audit: local+connector
  strict:
    connectors: [npmjs]
    audit: local
    filter:
      vulnerable: {min_severity: moderate}
`

// The advisory every client must print: ms 1.0.0 (a recorded version
// with no dependencies) is affected by GHSA-w9mr-4mfr-499f (moderate).
const (
	osvMSAdvisory = "GHSA-w9mr-4mfr-499f"
	osvMSLevel    = "moderate"
)

// osvSetup is npmgate with osvConfig: its connector is the recorded
// registry with the fake audit service's endpoints (for local+connector),
// and the database comes from a URL.
type osvSetup struct {
	up      *upstream
	svc     *auditService
	g       *gate
	osvGets atomic.Int64
}

func newOSVSetup(t *testing.T) *osvSetup {
	t.Helper()
	s := &osvSetup{svc: startAuditService(t, msAdvisory()), up: startUpstream(t, "")}
	zipBytes, err := os.ReadFile(filepath.Join("..", "testdata", "osv", "npm.zip"))
	if err != nil {
		t.Fatal(err)
	}
	osvSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.osvGets.Add(1)
		w.Header().Set("ETag", `"npm-zip-1"`)
		if r.Header.Get("If-None-Match") == `"npm-zip-1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Write(zipBytes)
	}))
	t.Cleanup(osvSrv.Close)
	// The recorded registry has no tarball of ms 1.0.0: the connector
	// serves one made here, under the integrity its packument is given.
	msTgz := npmTarball(t, "ms", "1.0.0")
	conn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/-/npm/v1/security/audits"):
			// Recorded by the audit service; answered with a v1 report
			// naming the connector's ms advisory (the service's own v1
			// answers are empty).
			s.svc.Config.Handler.ServeHTTP(httptest.NewRecorder(), r)
			w.Header().Set("Content-Type", "application/json")
			w.Write(connectorV1Report(t))
		case strings.HasPrefix(r.URL.Path, "/-/npm/v1/security/"):
			s.svc.Config.Handler.ServeHTTP(w, r)
		case r.URL.Path == "/ms/-/ms-1.0.0.tgz":
			w.Write(msTgz)
		default:
			s.up.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(conn.Close)
	s.up.SetPackumentOverride("ms", 200, "application/json", msWithTarball(t, conn.URL+"/ms/-/ms-1.0.0.tgz", msTgz))
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, strings.NewReplacer("OSVURL", osvSrv.URL+"/npm/all.zip", "CONNECTOR", conn.URL).Replace(osvConfig))
	s.g = startGate(t, conn.URL, "", "--config", file)
	if s.osvGets.Load() == 0 {
		t.Fatal("npmgate is ready without having fetched the OSV export")
	}
	return s
}

// osvProject is a project depending on ms 1.0.0.
func osvProject(t *testing.T, sb *sandbox, name string) string {
	t.Helper()
	dir := sb.dir(t, name)
	writeFile(t, filepath.Join(dir, "package.json"), string(mustJSON(t, map[string]any{
		"name": "osv-app", "version": "1.0.0", "private": true, "license": "MIT",
		"dependencies": map[string]string{"ms": "1.0.0"},
	})))
	return dir
}

// mustPrint fails when out lacks any of the patterns.
func mustPrint(t *testing.T, r result, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !strings.Contains(r.out, p) {
			t.Errorf("output lacks %q:\n%s", p, r)
		}
	}
}

func TestOSVAuditClients(t *testing.T) {
	s := newOSVSetup(t)
	reg := s.g.URL

	t.Run("npm", func(t *testing.T) {
		sb := newSandbox(t)
		dir := osvProject(t, sb, "npm")
		mustSucceed(t, sb.npm(t, dir, reg, "install", "--package-lock-only"))
		r := sb.npm(t, dir, reg, "audit")
		if r.code != 1 {
			t.Errorf("npm audit exited %d, want 1:\n%s", r.code, r)
		}
		mustPrint(t, r, "ms", osvMSAdvisory, "Severity: "+osvMSLevel)
		// local+connector: the connector's advisory of ms too.
		r = sb.npm(t, dir, reg+"npm/both/", "audit")
		mustPrint(t, r, osvMSAdvisory, auditAdvURL)
	})
	t.Run("yarn1", func(t *testing.T) {
		sb := newSandbox(t)
		dir := osvProject(t, sb, "yarn1")
		// yarn 1 audits against the registry of its rc files, not --registry.
		writeFile(t, filepath.Join(dir, ".yarnrc"), fmt.Sprintf("registry %q\n", reg))
		yarn := toolPath(t, toolYarn1)
		cache := sb.dir(t, "yarn1-cache")
		mustSucceed(t, sb.node(t, dir, yarn, "install", "--non-interactive", "--registry", reg, "--cache-folder", cache))
		var caFile string
		sb.env, caFile = yarnRegistryProxy(t, sb, reg)
		writeFile(t, filepath.Join(dir, ".yarnrc"), fmt.Sprintf("registry %q\ncafile %q\n", reg, caFile))
		r := sb.node(t, dir, yarn, "audit", "--non-interactive", "--registry", reg, "--cache-folder", cache)
		// yarn 1 names an advisory by its number (its link is built from
		// it), not by its GHSA id.
		mustPrint(t, r, "Package       │ ms", "moderate", strconv.FormatInt(osv.NumericID(osvMSAdvisory, "ms"), 10), "Vercel ms Inefficient Regular Expression Complexity")
		// local+connector: the connector's advisory too.
		sb.env, caFile = yarnRegistryProxy(t, sb, reg+"npm/both/")
		writeFile(t, filepath.Join(dir, ".yarnrc"), fmt.Sprintf("registry %q\ncafile %q\n", reg, caFile))
		r = sb.node(t, dir, yarn, "audit", "--non-interactive", "--registry", reg, "--cache-folder", cache)
		mustPrint(t, r, "Vercel ms Inefficient Regular Expression Complexity", "npmgate e2e", "high")
	})
	t.Run("yarn4", func(t *testing.T) {
		sb := newSandbox(t)
		dir := osvProject(t, sb, "yarn4")
		rc := fmt.Sprintf("npmRegistryServer: %q\nunsafeHttpWhitelist:\n  - \"127.0.0.1\"\nnodeLinker: node-modules\nenableGlobalCache: false\ncacheFolder: %q\nenableTelemetry: false\nenableImmutableInstalls: false\n",
			strings.TrimSuffix(reg, "/"), sb.dir(t, "yarn4-cache"))
		writeFile(t, filepath.Join(dir, ".yarnrc.yml"), rc)
		yarn := toolPath(t, toolYarn4)
		mustSucceed(t, sb.node(t, dir, yarn, "install"))
		r := sb.node(t, dir, yarn, "npm", "audit")
		mustPrint(t, r, "ms", osvMSAdvisory, osvMSLevel)
		writeFile(t, filepath.Join(dir, ".yarnrc.yml"), strings.Replace(rc, strings.TrimSuffix(reg, "/"), reg+"npm/both", 1))
		r = sb.node(t, dir, yarn, "npm", "audit")
		mustPrint(t, r, osvMSAdvisory, auditAdvURL)
	})
	t.Run("pnpm", func(t *testing.T) {
		sb := newSandbox(t)
		dir := osvProject(t, sb, "pnpm")
		writeFile(t, filepath.Join(dir, ".npmrc"), "registry="+reg+"\n")
		pnpm := toolPath(t, toolPnpm)
		mustSucceed(t, sb.node(t, dir, pnpm, "install", "--lockfile-only", "--registry", reg, "--store-dir", sb.dir(t, "pnpm-store")))
		r := sb.node(t, dir, pnpm, "audit", "--registry", reg)
		mustPrint(t, r, "ms", osvMSAdvisory, osvMSLevel)
		r = sb.node(t, dir, pnpm, "audit", "--registry", reg+"npm/both/")
		mustPrint(t, r, osvMSAdvisory, auditAdvURL)
	})
	// audit: local sends nothing anywhere; local+connector asked the
	// connector for npm's and yarn 4's audits through feed both only.
	for _, q := range s.svc.requests() {
		if !strings.HasPrefix(q.path, "/-/npm/v1/security/") {
			t.Errorf("the audit service received %s", q.path)
		}
	}
	if n := len(s.svc.requests()); n != 4 {
		t.Errorf("the audit service received %d requests, want 4 (the local+connector audits of npm, yarn 1, yarn 4 and pnpm)", n)
	}
}

// A malicious version vanishes: npm picks the allowed one when the
// connector's latest is malicious, and an exact request for it fails;
// its tarball is a 403 naming the advisory. The vulnerable rule hides
// ms 1.0.0 from npm on the strict feed.
func TestOSVRulesNPM(t *testing.T) {
	s := newOSVSetup(t)
	reg := s.g.URL
	s.up.SetPackumentOverride("debug", 200, "application/json", debugWithMalicious(t))

	sb := newSandbox(t)
	dir := sb.dir(t, "app")
	writeFile(t, filepath.Join(dir, "package.json"), `{"name":"osv-rules","version":"1.0.0","private":true,"dependencies":{"debug":"^4.4.0"}}`)
	mustSucceed(t, sb.npm(t, dir, reg, "install"))
	checkInstalledVersion(t, dir, "debug", "4.4.3")

	dir2 := sb.dir(t, "exact")
	writeFile(t, filepath.Join(dir2, "package.json"), `{"name":"osv-exact","version":"1.0.0","private":true,"dependencies":{"debug":"4.4.2"}}`)
	mustFailWith(t, sb.npm(t, dir2, reg, "install"), "debug@4.4.2")

	tb := get(t, reg+"debug/-/debug-4.4.2.tgz")
	if tb.status != 403 || !bytes.Contains(tb.body, []byte("MAL-2025-46974")) {
		t.Errorf("tarball of debug 4.4.2: %d %s, want a 403 naming MAL-2025-46974", tb.status, tb.body)
	}

	dir3 := osvProject(t, sb, "strict")
	mustFailWith(t, sb.npm(t, dir3, reg+"npm/strict/", "install", "--package-lock-only"), "ms@1.0.0")
	tb = get(t, reg+"npm/strict/ms/-/ms-1.0.0.tgz")
	if tb.status != 403 || !bytes.Contains(tb.body, []byte(osvMSAdvisory)) {
		t.Errorf("tarball of ms 1.0.0 on the strict feed: %d %s, want a 403 naming %s", tb.status, tb.body, osvMSAdvisory)
	}
}

// debugWithMalicious is the recorded debug packument with only 4.4.3 and
// a 4.4.2 (the release MAL-2025-46974 names, removed from the registry
// before the recording) tagged latest, as the registry served it during
// the September 2025 compromise: npm would install it.
func debugWithMalicious(t *testing.T) []byte {
	t.Helper()
	doc := recordedPackument(t, "debug")
	versions := doc["versions"].(map[string]any)
	good := versions["4.4.3"].(map[string]any)
	bad := map[string]any{}
	for k, v := range good {
		bad[k] = v
	}
	bad["version"] = "4.4.2"
	doc["versions"] = map[string]any{"4.4.3": good, "4.4.2": bad}
	times := doc["time"].(map[string]any)
	times["4.4.2"] = "2025-09-08T13:00:00.000Z"
	doc["dist-tags"] = map[string]any{"latest": "4.4.2"}
	return mustJSON(t, doc)
}

// msWithTarball is the recorded ms packument with 1.0.0's tarball at url,
// of integrity tgz.
func msWithTarball(t *testing.T, url string, tgz []byte) []byte {
	t.Helper()
	doc := recordedPackument(t, "ms")
	v := doc["versions"].(map[string]any)["1.0.0"].(map[string]any)
	sha := sha512.Sum512(tgz)
	sha1sum := sha1.Sum(tgz)
	v["dist"] = map[string]any{"tarball": url, "integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha[:]), "shasum": hex.EncodeToString(sha1sum[:])}
	return mustJSON(t, doc)
}

// recordedPackument reads a packument of testdata/registry.
func recordedPackument(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "registry", "packuments", name+".json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// yarnRegistryProxy makes yarn 1's audit reach npmgate: yarn 1.22 posts
// audits to https://registry.yarnpkg.com whatever registry it is given,
// so the test runs it through a proxy that answers a CONNECT to that host
// with a TLS server of its own (a certificate of a test CA that node
// trusts through NODE_EXTRA_CA_CERTS) forwarding to npmgate. It returns
// the environment to run yarn with and the CA file (yarn 1 reads its
// cafile setting rather than node's extra certificates).
func yarnRegistryProxy(t *testing.T, sb *sandbox, gateURL string) (env []string, caFile string) {
	t.Helper()
	const host = "registry.yarnpkg.com"
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "npmgate e2e yarn CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	target, _ := url.Parse(gateURL)
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	front.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	front.StartTLS()
	t.Cleanup(front.Close)
	var mu sync.Mutex
	var conns []net.Conn
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != host+":443" {
			http.Error(w, "this test proxy only reaches "+host, http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		mu.Lock()
		conns = append(conns, conn, up)
		mu.Unlock()
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() {
			defer up.Close()
			io.Copy(up, io.MultiReader(bufferedOf(brw.Reader), conn))
		}()
		go func() {
			defer conn.Close()
			io.Copy(conn, up)
		}()
	}))
	t.Cleanup(func() {
		proxy.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	for _, kv := range sb.env {
		if k, _, _ := strings.Cut(kv, "="); !strings.EqualFold(k, "https_proxy") {
			env = append(env, kv)
		}
	}
	return append(env, "HTTPS_PROXY="+proxy.URL, "https_proxy="+proxy.URL, "NODE_EXTRA_CA_CERTS="+caFile), caFile
}

// connectorV1Report is a v1 audit report (yarn 1's and pnpm's form)
// naming msAdvisory for ms 1.0.0, as the registry's audit service would.
func connectorV1Report(t *testing.T) []byte {
	a := msAdvisory()["ms"][0]
	adv := map[string]any{
		"id": a["id"], "module_name": "ms", "title": a["title"], "severity": a["severity"],
		"vulnerable_versions": a["vulnerable_versions"], "patched_versions": ">=2.2.0", "url": a["url"],
		"github_advisory_id": "GHSA-e2e0-ms00-0001", "cves": []string{}, "cwe": a["cwe"], "access": "public",
		"overview": "", "recommendation": "Upgrade to version 2.2.0 or later", "references": "",
		"created": "2025-01-01T00:00:00.000Z", "updated": "2025-01-01T00:00:00.000Z", "deleted": nil,
		"found_by": map[string]string{"name": ""}, "reported_by": map[string]string{"name": ""},
		"findings": []any{map[string]any{"version": "1.0.0", "paths": []string{"ms"}}},
	}
	return mustJSON(t, map[string]any{
		"actions": []any{map[string]any{"action": "review", "module": "ms", "resolves": []any{
			map[string]any{"id": a["id"], "path": "ms", "dev": false, "optional": false, "bundled": false}}}},
		"advisories": map[string]any{fmt.Sprint(a["id"]): adv},
		"muted":      []any{},
		"metadata": map[string]any{"vulnerabilities": map[string]int{"info": 0, "low": 0, "moderate": 0, "high": 1, "critical": 0},
			"dependencies": 1, "devDependencies": 0, "optionalDependencies": 0, "totalDependencies": 1},
	})
}
