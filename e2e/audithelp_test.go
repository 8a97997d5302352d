package e2e

// Helpers of audit_test.go: a fake npm audit service that records what
// npmgate forwards to it, a small registry of our own (packuments signed
// with a key the test makes, /-/npm/v1/keys and /-/v1/search), and a fake
// Sigstore TUF repository behind an intercepting proxy on loopback, which
// `npm audit signatures` needs before it asks the registry for its keys.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// auditRequest is one request the fake audit service received, its body
// inflated when it came gzipped.
type auditRequest struct {
	path     string
	encoding string // Content-Encoding as sent
	body     []byte
}

// auditService is a fake npm audit service. The bulk endpoint answers
// advisories for the names asked about (and only those); quick and full
// audits get an empty report of the old shape.
type auditService struct {
	*httptest.Server
	advisories map[string][]map[string]any
	mu         sync.Mutex
	reqs       []auditRequest
}

func startAuditService(t *testing.T, advisories map[string][]map[string]any) *auditService {
	t.Helper()
	s := &auditService{advisories: advisories}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *auditService) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	body := raw
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			http.Error(w, "bad gzip: "+err.Error(), 400)
			return
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, auditRequest{path: r.URL.Path, encoding: r.Header.Get("Content-Encoding"), body: body})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "POST" && r.URL.Path == "/-/npm/v1/security/advisories/bulk":
		var asked map[string][]string
		if err := json.Unmarshal(body, &asked); err != nil {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"not a bulk request"}`)
			return
		}
		out := map[string]any{}
		for name := range asked {
			if a, ok := s.advisories[name]; ok {
				out[name] = a
			}
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == "POST" && (r.URL.Path == "/-/npm/v1/security/audits/quick" || r.URL.Path == "/-/npm/v1/security/audits"):
		io.WriteString(w, `{"actions":[],"advisories":{},"muted":[],"metadata":{"vulnerabilities":{"info":0,"low":0,"moderate":0,"high":0,"critical":0},"dependencies":1,"devDependencies":0,"optionalDependencies":0,"totalDependencies":1}}`)
	default:
		w.WriteHeader(404)
		io.WriteString(w, `{"error":"Not found"}`)
	}
}

// requests is what the service received so far.
func (s *auditService) requests() []auditRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func (s *auditService) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

// gzipBytes compresses b.
func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzipSpaces is n spaces, gzipped: a few hundred kilobytes that inflate to
// n bytes.
func gzipSpaces(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{' '}, 1<<20)
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := zw.Write(chunk[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// post sends a body to url; headers are name, value pairs.
func post(t *testing.T, url string, body []byte, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("POST %s (%d bytes): %v", url, len(body), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// regSigner signs packuments as the public registry does: ECDSA P-256
// over SHA-256 of "name@version:integrity", base64 DER signatures, and
// keyid "SHA256:" + base64 of the sha256 of the SPKI DER public key.
type regSigner struct {
	key   *ecdsa.PrivateKey
	spki  []byte
	keyid string
}

func newRegSigner(t *testing.T) *regSigner {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	return &regSigner{key: key, spki: spki, keyid: "SHA256:" + base64.StdEncoding.EncodeToString(sum[:])}
}

func (s *regSigner) sign(t *testing.T, message string) string {
	t.Helper()
	h := sha256.Sum256([]byte(message))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// keysDoc is the registry's /-/npm/v1/keys answer for this key.
func (s *regSigner) keysDoc(t *testing.T) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{"keys": []any{map[string]any{
		"expires": nil, "keyid": s.keyid, "keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256",
		"key": base64.StdEncoding.EncodeToString(s.spki),
	}}})
}

// searchHit is one package the fake registry's search knows.
type searchHit struct {
	name, version, description string
}

// apiRegistry is a small registry of our own: packuments (with
// dist.tarball on itself), tarballs, /-/npm/v1/keys and /-/v1/search.
// It logs every request it receives.
type apiRegistry struct {
	*httptest.Server
	mu       sync.Mutex
	docs     map[string]map[string]any // name -> packument, tarball URLs as paths
	tarballs map[string][]byte         // request path -> bytes
	keys     []byte
	hits     []searchHit
	log      []string
}

func startAPIRegistry(t *testing.T) *apiRegistry {
	t.Helper()
	r := &apiRegistry{docs: map[string]map[string]any{}, tarballs: map[string][]byte{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.Close()
		if t.Failed() {
			t.Logf("registry %s requests:\n%s", r.URL, strings.Join(r.requests(), "\n"))
		}
	})
	return r
}

// publish adds name@version, signed by signer over message (nil: no
// signature); tarballs and integrity are made here. It returns the
// version's integrity.
func (r *apiRegistry) publish(t *testing.T, name, version string, signer *regSigner, message func(integrity string) string) string {
	t.Helper()
	tb := npmTarball(t, name, version)
	sum1 := sha1.Sum(tb)
	integrity := sriOf(tb)
	file := name[strings.LastIndex(name, "/")+1:] + "-" + version + ".tgz"
	dist := map[string]any{
		"tarball":   "/" + name + "/-/" + file,
		"integrity": integrity,
		"shasum":    hex.EncodeToString(sum1[:]),
	}
	if signer != nil {
		dist["signatures"] = []any{map[string]any{"keyid": signer.keyid, "sig": signer.sign(t, message(integrity))}}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tarballs["/"+name+"/-/"+file] = tb
	r.docs[name] = map[string]any{
		"_id": name, "name": name,
		"dist-tags": map[string]string{"latest": version},
		"versions": map[string]any{version: map[string]any{
			"_id": name + "@" + version, "name": name, "version": version, "main": "index.js", "license": "MIT",
			"description": "signed e2e package " + name,
			"dist":        dist,
		}},
		"time": map[string]string{
			"created": "2024-01-02T03:04:05.000Z", "modified": "2024-01-02T03:04:05.000Z", version: "2024-01-02T03:04:05.000Z",
		},
	}
	return integrity
}

// signatures is what the registry serves as dist.signatures of name@version.
func (r *apiRegistry) signatures(name, version string) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.docs[name]["versions"].(map[string]any)[version].(map[string]any)["dist"].(map[string]any)["signatures"]
}

func (r *apiRegistry) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func (r *apiRegistry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.log = append(r.log, req.Method+" "+req.URL.RequestURI())
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	notFound := func() {
		w.WriteHeader(404)
		io.WriteString(w, `{"error":"Not found"}`)
	}
	if req.Method != "GET" && req.Method != "HEAD" {
		w.WriteHeader(405)
		io.WriteString(w, `{"error":"method not allowed"}`)
		return
	}
	path := req.URL.Path
	switch {
	case path == "/-/ping":
		io.WriteString(w, "{}")
	case path == "/-/npm/v1/keys":
		r.mu.Lock()
		keys := r.keys
		r.mu.Unlock()
		if keys == nil {
			notFound()
			return
		}
		w.Write(keys)
	case path == "/-/v1/search":
		r.serveSearch(w, req)
	case strings.Contains(path, "/-/"):
		r.mu.Lock()
		tb, ok := r.tarballs[path]
		r.mu.Unlock()
		if !ok {
			notFound()
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(tb)
	default:
		name := strings.Replace(strings.TrimPrefix(path, "/"), "%2f", "/", 1)
		name = strings.Replace(name, "%2F", "/", 1)
		r.mu.Lock()
		doc, ok := r.docs[name]
		var b []byte
		if ok {
			b, _ = json.Marshal(doc)
		}
		r.mu.Unlock()
		if !ok {
			notFound()
			return
		}
		// Tarball URLs are absolute, on this server, as a registry's are.
		b = bytes.ReplaceAll(b, []byte(`"tarball":"/`), []byte(`"tarball":"`+r.URL+`/`))
		w.Write(b)
	}
}

// serveSearch answers /-/v1/search as the public registry does, from the
// hits whose name or description holds every word of text.
func (r *apiRegistry) serveSearch(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	words := strings.Fields(strings.ToLower(q.Get("text")))
	size, err := strconv.Atoi(q.Get("size"))
	if err != nil || size <= 0 {
		size = 20
	}
	from, _ := strconv.Atoi(q.Get("from"))
	r.mu.Lock()
	hits := slices.Clone(r.hits)
	r.mu.Unlock()
	var matched []any
	for _, h := range hits {
		hay := strings.ToLower(h.name + " " + h.description)
		ok := true
		for _, word := range words {
			ok = ok && strings.Contains(hay, word)
		}
		if !ok {
			continue
		}
		scope := "unscoped"
		if strings.HasPrefix(h.name, "@") {
			scope = strings.TrimPrefix(h.name[:strings.Index(h.name, "/")], "@")
		}
		matched = append(matched, map[string]any{
			"package": map[string]any{
				"name": h.name, "scope": scope, "version": h.version, "description": h.description,
				"date":        "2024-01-02T03:04:05.000Z",
				"links":       map[string]string{"npm": "https://www.npmjs.com/package/" + h.name},
				"publisher":   map[string]string{"username": "upstream-publisher", "email": "publisher@example.com"},
				"maintainers": []any{map[string]string{"username": "upstream-maintainer", "email": "maintainer@example.com"}},
			},
			"score":       map[string]any{"final": 0.5, "detail": map[string]float64{"quality": 0.5, "popularity": 0.5, "maintenance": 0.5}},
			"searchScore": 0.001,
		})
	}
	total := len(matched)
	if from > len(matched) {
		from = len(matched)
	}
	matched = matched[from:]
	if len(matched) > size {
		matched = matched[:size]
	}
	if matched == nil {
		matched = []any{}
	}
	json.NewEncoder(w).Encode(map[string]any{"objects": matched, "total": total, "time": "2024-01-02T03:04:05.000Z"})
}

// tufHost is the Sigstore TUF repository npm's `audit signatures` asks
// first (hard-wired in @sigstore/tuf).
const tufHost = "tuf-repo-cdn.sigstore.dev"

// fakeTUF is a TUF repository of our own, served over TLS as tufHost by a
// loopback server, and a proxy that sends npm's CONNECT to tufHost:443
// there and refuses every other destination. Its root of trust, written
// into npm's TUF cache before npm runs, is a key the test made, so the
// metadata it signs verifies; its targets hold no registry keys, so npm
// falls back to the registry's /-/npm/v1/keys, as it does for any registry
// but the public one.
type fakeTUF struct {
	repo   *httptest.Server
	proxy  *httptest.Server
	caFile string
	root   []byte // signed root.json, version 1
	files  map[string][]byte
	mu     sync.Mutex
	log    []string // requests to the repository and CONNECTs to the proxy
	conns  []net.Conn
}

func startFakeTUF(t *testing.T) *fakeTUF {
	t.Helper()
	f := &fakeTUF{files: map[string][]byte{}}
	f.makeMetadata(t)

	// A CA and a certificate for tufHost it signed; node trusts the CA
	// through NODE_EXTRA_CA_CERTS.
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "npmgate e2e test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: tufHost}, DNSNames: []string{tufHost},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, f.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))

	f.repo = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.log = append(f.log, r.Method+" https://"+r.Host+r.URL.RequestURI())
		f.mu.Unlock()
		b, ok := f.files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r) // 2.root.json: the root we planted is the newest
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	f.repo.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	f.repo.StartTLS()
	t.Cleanup(f.repo.Close)

	f.proxy = httptest.NewServer(http.HandlerFunc(f.serveProxy))
	t.Cleanup(func() {
		f.proxy.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	return f
}

// serveProxy relays a CONNECT to tufHost:443 to the fake repository.
func (f *fakeTUF) serveProxy(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.log = append(f.log, r.Method+" "+r.Host)
	f.mu.Unlock()
	if r.Method != http.MethodConnect || r.Host != tufHost+":443" {
		http.Error(w, "this test proxy only reaches "+tufHost, http.StatusForbidden)
		return
	}
	up, err := net.Dial("tcp", f.repo.Listener.Addr().String())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, conn, up)
	f.mu.Unlock()
	io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		defer up.Close()
		io.Copy(up, io.MultiReader(bufferedOf(brw.Reader), conn))
	}()
	go func() {
		defer conn.Close()
		io.Copy(conn, up)
	}()
}

// bufferedOf is what a hijacked connection's reader already holds.
func bufferedOf(br *bufio.Reader) io.Reader {
	b, _ := br.Peek(br.Buffered())
	return bytes.NewReader(slices.Clone(b))
}

// requests is what reached the fake repository and proxy so far.
func (f *fakeTUF) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// makeMetadata writes root, timestamp, snapshot and targets metadata, all
// version 1, signed by one ed25519 key that holds every role. What is
// signed is canonical JSON: Go's sorted, compact encoding of these plain
// ASCII values is exactly that.
func (f *fakeTUF) makeMetadata(t *testing.T) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]any{"keytype": "ed25519", "scheme": "ed25519", "keyval": map[string]any{"public": hex.EncodeToString(pub)}}
	kid := sha256.Sum256(mustJSON(t, key))
	keyid := hex.EncodeToString(kid[:])
	expires := time.Now().UTC().Add(24 * time.Hour).Format("2006-01-02T15:04:05Z")
	role := map[string]any{"keyids": []string{keyid}, "threshold": 1}
	sign := func(signed map[string]any) []byte {
		signed["spec_version"] = "1.0.31"
		signed["version"] = 1
		signed["expires"] = expires
		sig := ed25519.Sign(priv, mustJSON(t, signed))
		return mustJSON(t, map[string]any{"signed": signed, "signatures": []any{map[string]any{"keyid": keyid, "sig": hex.EncodeToString(sig)}}})
	}
	f.root = sign(map[string]any{
		"_type": "root", "consistent_snapshot": false,
		"keys":  map[string]any{keyid: key},
		"roles": map[string]any{"root": role, "timestamp": role, "snapshot": role, "targets": role},
	})
	f.files["timestamp.json"] = sign(map[string]any{"_type": "timestamp", "meta": map[string]any{"snapshot.json": map[string]any{"version": 1}}})
	f.files["snapshot.json"] = sign(map[string]any{"_type": "snapshot", "meta": map[string]any{"targets.json": map[string]any{"version": 1}}})
	f.files["targets.json"] = sign(map[string]any{"_type": "targets", "targets": map[string]any{}})
}

// plant writes the root of trust into the TUF cache of an npm cache
// directory, where @sigstore/tuf would otherwise seed the public one.
func (f *fakeTUF) plant(t *testing.T, npmCache string) {
	t.Helper()
	dir := filepath.Join(npmCache, "_tuf", tufHost)
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.json"), f.root, 0o644); err != nil {
		t.Fatal(err)
	}
}

// env is the sandbox's environment with HTTPS going through the test
// proxy (which reaches only the fake TUF repository; npm's own requests
// keep --https-proxy, the dead proxy) and the test CA trusted.
func (f *fakeTUF) env(sb *sandbox) []string {
	var env []string
	for _, kv := range sb.env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, "https_proxy") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HTTPS_PROXY="+f.proxy.URL, "https_proxy="+f.proxy.URL, "NODE_EXTRA_CA_CERTS="+f.caFile)
}

// npmIn runs npm as sb.npm does, but with the given cache directory and
// environment.
func (sb *sandbox) npmIn(t *testing.T, dir, registry, cache string, env []string, args ...string) result {
	t.Helper()
	npm := onPath(t, "npm")
	onPath(t, "node")
	args = append(args, "--registry="+registry, "--cache="+cache, "--loglevel=http")
	args = append(args, sb.npmIsolation()...)
	c := *sb
	c.env = env
	return c.run(t, dir, npm, args...)
}
