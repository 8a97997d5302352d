package proxy

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
	"github.com/npmgate/npmgate/sign"
)

// upstreamKey is a keys entry of the public registry's form.
const upstreamKey = `{"expires":null,"keyid":"SHA256:upstream","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg=="}`

// keysUpstream is a registry that knows no package and answers
// /-/npm/v1/keys with body (404 when empty), counting those requests.
func keysUpstream(t *testing.T, body string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/-/npm/v1/keys" && body != "" {
			n.Add(1)
			w.Write([]byte(body))
			return
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"Not found"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// signingKey writes a new P-256 key and returns its file and public key.
func signingKey(t *testing.T) (string, *ecdsa.PublicKey) {
	t.Helper()
	b, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return file, &k.(*ecdsa.PrivateKey).PublicKey
}

// signedGate is a publishing gate signing with a new key, its connector
// at upstreamURL (when not empty).
func signedGate(t *testing.T, upstreamURL string, opts ...gateOpt) (*publisher, *ecdsa.PublicKey) {
	t.Helper()
	file, pub := signingKey(t)
	opts = append([]gateOpt{func(cfg *config.Config) {
		cfg.Signing.KeyFile = file
		if upstreamURL != "" {
			cfg.Connectors["up"].URL = upstreamURL
		}
	}}, opts...)
	g := startGate(t, fakeupstream.Start(t, fakeupstream.Dir()), opts...)
	tok, _, err := g.srv.auth.Tokens.Create(auth.NewToken{User: "alice"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &publisher{g, "Bearer " + tok}, pub
}

func keyidOf(t *testing.T, pub *ecdsa.PublicKey) (string, string) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.StdEncoding.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(der)
}

// versionDist is what a served document says of a version's dist.
type versionDist struct {
	Integrity  string           `json:"integrity"`
	Signatures []sign.Signature `json:"signatures"`
}

func servedDist(t *testing.T, g *gate, name, version, accept string) versionDist {
	t.Helper()
	resp, body := g.get("/"+strings.Replace(name, "/", "%2f", 1), "Accept", accept)
	var doc struct {
		Versions map[string]struct {
			Dist versionDist `json:"dist"`
		} `json:"versions"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("GET /%s (%s): %d %.300s", name, accept, resp.StatusCode, body)
	}
	v, ok := doc.Versions[version]
	if !ok {
		t.Fatalf("GET /%s (%s): no version %s", name, accept, version)
	}
	return v.Dist
}

// verifies reports whether sig is an ECDSA signature by pub over
// name@version:integrity, checked with crypto/ecdsa as npm checks it.
func verifies(pub *ecdsa.PublicKey, name, version, integrity, sig string) bool {
	raw, err := base64.StdEncoding.DecodeString(sig)
	h := sha256.Sum256([]byte(name + "@" + version + ":" + integrity))
	return err == nil && ecdsa.VerifyASN1(pub, h[:], raw)
}

// TestPublishedVersionsAreSigned publishes with and without signatures
// in the client's dist: every version is served, full and abbreviated,
// with exactly one signature, by npmgate's key, over
// name@version:integrity, and the one stored in the document on disk.
func TestPublishedVersionsAreSigned(t *testing.T) {
	up, _ := keysUpstream(t, "")
	p, pub := signedGate(t, up.URL)
	keyid, _ := keyidOf(t, pub)
	forged := func(doc, ver map[string]any) {
		ver["dist"].(map[string]any)["signatures"] = []any{
			map[string]any{"keyid": "SHA256:forged", "sig": "MEUCIQD="},
			map[string]any{"keyid": keyid, "sig": "MEUCIQD="},
		}
	}
	for _, tc := range []struct {
		name, version string
		edit          func(doc, ver map[string]any)
	}{
		{"sig-plain", "1.0.0", nil},
		{"sig-forged", "2.1.0", forged},
		{"@corp/sig-scoped", "0.1.0-rc.1", forged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := p.publish(tc.name, tc.version, tc.edit); status != 200 {
				t.Fatalf("publish: %d %s", status, body)
			}
			var integrity string
			for _, accept := range []string{"application/json", "application/vnd.npm.install-v1+json"} {
				d := servedDist(t, p.gate, tc.name, tc.version, accept)
				integrity = d.Integrity
				if len(d.Signatures) != 1 {
					t.Fatalf("%s: dist.signatures %+v, want one", accept, d.Signatures)
				}
				s := d.Signatures[0]
				if s.KeyID != keyid {
					t.Errorf("%s: keyid %q, want npmgate's %q", accept, s.KeyID, keyid)
				}
				if !verifies(pub, tc.name, tc.version, d.Integrity, s.Sig) {
					t.Errorf("%s: signature %q does not verify over %s@%s:%s", accept, s.Sig, tc.name, tc.version, d.Integrity)
				}
			}
			raw, err := os.ReadFile(p.localFile(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), "SHA256:forged") || strings.Contains(string(raw), "MEUCIQD=") {
				t.Errorf("the stored document keeps a client's signature: %s", raw)
			}
			var stored struct {
				Packument struct {
					Versions map[string]struct {
						Dist versionDist `json:"dist"`
					} `json:"versions"`
				} `json:"packument"`
			}
			json.Unmarshal(raw, &stored)
			sigs := stored.Packument.Versions[tc.version].Dist.Signatures
			if len(sigs) != 1 || !verifies(pub, tc.name, tc.version, integrity, sigs[0].Sig) {
				t.Errorf("stored dist.signatures %+v, want npmgate's one signature", sigs)
			}
		})
	}
}

// TestUnsignedLocalVersionsAreSignedWhenServed: a version stored without
// a signature (published before npmgate signed) is served signed, the
// stored document left as it is, while a stored signature that no longer
// matches its document (an integrity changed on disk) is served as it is,
// for npm to report.
func TestUnsignedLocalVersionsAreSignedWhenServed(t *testing.T) {
	up, _ := keysUpstream(t, "")
	p, pub := signedGate(t, up.URL)
	for _, name := range []string{"sig-legacy", "sig-tampered"} {
		if status, body := p.publish(name, "1.0.0", nil); status != 200 {
			t.Fatalf("publish %s: %d %s", name, status, body)
		}
	}
	edit := func(name string, change func(dist map[string]any)) []byte {
		t.Helper()
		file := p.localFile(name)
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		change(d["packument"].(map[string]any)["versions"].(map[string]any)["1.0.0"].(map[string]any)["dist"].(map[string]any))
		out, _ := json.Marshal(d)
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
		p.srv.feeds["main"].Invalidate(name)
		return out
	}
	legacy := edit("sig-legacy", func(dist map[string]any) { delete(dist, "signatures") })
	d := servedDist(t, p.gate, "sig-legacy", "1.0.0", "application/json")
	if len(d.Signatures) != 1 || !verifies(pub, "sig-legacy", "1.0.0", d.Integrity, d.Signatures[0].Sig) {
		t.Errorf("an unsigned stored version is served with dist.signatures %+v, want npmgate's signature", d.Signatures)
	}
	again := servedDist(t, p.gate, "sig-legacy", "1.0.0", "application/vnd.npm.install-v1+json")
	if len(again.Signatures) != 1 || again.Signatures[0] != d.Signatures[0] {
		t.Errorf("the abbreviated document's signature %+v differs from the full one's %+v", again.Signatures, d.Signatures)
	}
	if raw, _ := os.ReadFile(p.localFile("sig-legacy")); string(raw) != string(legacy) {
		t.Errorf("serving changed the stored document:\n%s\nwas\n%s", raw, legacy)
	}

	var before string
	edit("sig-tampered", func(dist map[string]any) {
		sigs, _ := dist["signatures"].([]any)
		if len(sigs) != 1 {
			t.Fatalf("the stored version has dist.signatures %v, want one", dist["signatures"])
		}
		before, _ = sigs[0].(map[string]any)["sig"].(string)
		dist["integrity"] = "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 64))
	})
	d = servedDist(t, p.gate, "sig-tampered", "1.0.0", "application/json")
	if len(d.Signatures) != 1 || d.Signatures[0].Sig != before {
		t.Errorf("a tampered version is served with dist.signatures %+v, want the stored one (%s) kept", d.Signatures, before)
	}
	if verifies(pub, "sig-tampered", "1.0.0", d.Integrity, d.Signatures[0].Sig) {
		t.Error("the tampered version's signature verifies: it was signed again")
	}
}

// TestKeysMergeConnectorAndOwn: /-/npm/v1/keys answers the connector's
// keys (as sent, asked once an hour) and npmgate's own; a connector
// without keys, or a feed without connectors, answers npmgate's alone.
func TestKeysMergeConnectorAndOwn(t *testing.T) {
	type keysDoc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	answer := func(t *testing.T, g *gate) keysDoc {
		t.Helper()
		resp, body := g.get("/-/npm/v1/keys")
		var doc keysDoc
		if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil {
			t.Fatalf("GET /-/npm/v1/keys: %d %s", resp.StatusCode, body)
		}
		return doc
	}
	ownEntry := func(t *testing.T, pub *ecdsa.PublicKey, expires string) string {
		keyid, der := keyidOf(t, pub)
		e := "null"
		if expires != "" {
			e = `"` + expires + `"`
		}
		return `{"expires":` + e + `,"keyid":"` + keyid + `","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"` + der + `"}`
	}
	same := func(t *testing.T, got json.RawMessage, want string) {
		t.Helper()
		var a, b any
		json.Unmarshal(got, &a)
		json.Unmarshal([]byte(want), &b)
		if ga, _ := json.Marshal(a); string(ga) != mustMarshal(b) {
			t.Errorf("key %s, want %s", got, want)
		}
	}

	t.Run("merged", func(t *testing.T) {
		up, asked := keysUpstream(t, `{"keys":[`+upstreamKey+`]}`)
		p, pub := signedGate(t, up.URL, func(cfg *config.Config) { cfg.Signing.Expires = "2031-02-03T04:05:06.000Z" })
		for range 2 {
			doc := answer(t, p.gate)
			if len(doc.Keys) != 2 {
				t.Fatalf("keys %s, want the connector's and npmgate's", doc.Keys)
			}
			same(t, doc.Keys[0], upstreamKey)
			same(t, doc.Keys[1], ownEntry(t, pub, "2031-02-03T04:05:06.000Z"))
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("the connector was asked for its keys %d times, want once", n)
		}
	})
	// Each connector's packages carry its own signatures: npm verifies
	// those of the second connector only if its keys are in the answer.
	t.Run("two connectors", func(t *testing.T) {
		const otherKey = `{"expires":null,"keyid":"SHA256:other","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg=="}`
		up, _ := keysUpstream(t, `{"keys":[`+upstreamKey+`]}`)
		other, _ := keysUpstream(t, `{"keys":[`+otherKey+`,`+upstreamKey+`]}`)
		two := func(cfg *config.Config) {
			cfg.Connectors["other"] = &config.Connector{URL: other.URL, Timeout: config.Duration(10 * time.Second), TarballTimeout: config.Duration(time.Minute), Retries: new(int)}
			cfg.Feeds["main"].Connectors = []string{"up", "other"}
		}
		p, pub := signedGate(t, up.URL, two)
		doc := answer(t, p.gate)
		if len(doc.Keys) != 3 {
			t.Fatalf("keys %s, want the first connector's, the second's (npm's key once) and npmgate's", doc.Keys)
		}
		same(t, doc.Keys[0], upstreamKey)
		same(t, doc.Keys[1], otherKey)
		same(t, doc.Keys[2], ownEntry(t, pub, ""))

		unsigned := startGate(t, fakeupstream.Start(t, fakeupstream.Dir()), func(cfg *config.Config) { cfg.Connectors["up"].URL = up.URL }, two)
		if doc := answer(t, unsigned); len(doc.Keys) != 2 {
			t.Errorf("two connectors, no key of npmgate's: %s, want both connectors' keys", doc.Keys)
		}
	})
	t.Run("connector without keys", func(t *testing.T) {
		up, _ := keysUpstream(t, "")
		p, pub := signedGate(t, up.URL)
		doc := answer(t, p.gate)
		if len(doc.Keys) != 1 {
			t.Fatalf("keys %s, want npmgate's alone", doc.Keys)
		}
		same(t, doc.Keys[0], ownEntry(t, pub, ""))
	})
	t.Run("no connector", func(t *testing.T) {
		p, pub := signedGate(t, "", func(cfg *config.Config) { cfg.Feeds["main"].Connectors = nil })
		doc := answer(t, p.gate)
		if len(doc.Keys) != 1 {
			t.Fatalf("keys %s, want npmgate's alone", doc.Keys)
		}
		same(t, doc.Keys[0], ownEntry(t, pub, ""))
	})
	t.Run("connector failing", func(t *testing.T) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			w.Write([]byte(`{"error":"down"}`))
		}))
		t.Cleanup(up.Close)
		p, _ := signedGate(t, up.URL)
		resp, body := p.get("/-/npm/v1/keys")
		var e struct{ Error string }
		if resp.StatusCode < 500 || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "signing keys") {
			t.Errorf("GET /-/npm/v1/keys with the connector failing: %d %s, want a 5xx saying the connector's keys are missing", resp.StatusCode, body)
		}
	})
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestReloadRefusesASigningChange: the key is read at start; a reload
// changing it is refused whole, saying to restart, and the running key
// keeps signing.
func TestReloadRefusesASigningChange(t *testing.T) {
	up, _ := keysUpstream(t, "")
	p, pub := signedGate(t, up.URL)
	other, _ := signingKey(t)
	for _, edit := range []func(*config.Signing){
		func(s *config.Signing) { s.KeyFile = other },
		func(s *config.Signing) { s.KeyID = "SHA256:other" },
		func(s *config.Signing) { s.Expires = "2030-01-01T00:00:00.000Z" },
	} {
		cfg := *p.srv.cfg
		edit(&cfg.Signing)
		if err := p.srv.Reload(&cfg); err == nil || !strings.Contains(err.Error(), "signing changed: restart") {
			t.Errorf("reload with signing %+v: %v, want a refusal saying to restart", cfg.Signing, err)
		}
	}
	if status, body := p.publish("sig-after-reload", "1.0.0", nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	d := servedDist(t, p.gate, "sig-after-reload", "1.0.0", "application/json")
	if len(d.Signatures) != 1 || !verifies(pub, "sig-after-reload", "1.0.0", d.Integrity, d.Signatures[0].Sig) {
		t.Errorf("after the refused reload: dist.signatures %+v, want the running key's", d.Signatures)
	}
}

// TestAttestationsFromTheConnectorThatHasThem: attestations are asked of
// the feed's connectors in order, the first not answering 404 answers
// (the second connector's packages have provenance too); none: 404.
func TestAttestationsFromTheConnectorThatHasThem(t *testing.T) {
	const body = `{"attestations":[{"predicateType":"https://slsa.dev/provenance/v1","bundle":{}}]}`
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/-/npm/v1/attestations/@corp/lib@1.0.0" || r.URL.EscapedPath() == "/-/npm/v1/attestations/@corp%2flib@1.0.0" {
			w.Write([]byte(body))
			return
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"Not found"}`))
	}))
	t.Cleanup(second.Close)
	first, _ := keysUpstream(t, "")
	g := startGate(t, fakeupstream.Start(t, fakeupstream.Dir()), func(cfg *config.Config) {
		cfg.Connectors["up"].URL = first.URL
		cfg.Connectors["second"] = &config.Connector{URL: second.URL, Timeout: config.Duration(10 * time.Second), TarballTimeout: config.Duration(time.Minute), Retries: new(int)}
		cfg.Feeds["main"].Connectors = []string{"up", "second"}
	})
	if resp, got := g.get("/-/npm/v1/attestations/@corp%2flib@1.0.0"); resp.StatusCode != 200 || string(got) != body {
		t.Errorf("attestations only the second connector has: %d %s", resp.StatusCode, got)
	}
	if resp, got := g.get("/-/npm/v1/attestations/nobody-has@1.0.0"); resp.StatusCode != 404 || !strings.Contains(string(got), "no attestations") {
		t.Errorf("attestations nobody has: %d %s", resp.StatusCode, got)
	}
}
