package e2e

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/internal/testservices"
)

// TestAuditSignaturesLocalAndConnector runs npm audit signatures on a
// project holding a package published to npmgate and one from its
// connector (signed with the connector's key, served at the connector's
// /-/npm/v1/keys): npmgate signs its own, answers both keys, and npm
// verifies both. Then a local document changed on disk (its integrity)
// and a connector document signed by another key are reported as
// invalid, and the good package still verifies.
func TestAuditSignaturesLocalAndConnector(t *testing.T) {
	reg := startAPIRegistry(t)
	upSigner := newRegSigner(t)
	reg.keys = upSigner.keysDoc(t)
	const local, good, bad = "e2e-sig-local", "e2e-sig-up", "e2e-sig-up-bad"
	reg.publish(t, good, "1.0.0", upSigner, func(integrity string) string { return good + "@1.0.0:" + integrity })
	// Signed by another key under the connector's key id: a document
	// someone re-signed.
	forger := newRegSigner(t)
	forger.keyid = upSigner.keyid
	reg.publish(t, bad, "1.0.0", forger, func(integrity string) string { return bad + "@1.0.0:" + integrity })

	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, strings.ReplaceAll(signedConfig, "REGISTRY", reg.URL))
	g := startGate(t, reg.URL, "", "--config", file)
	addGateUser(t, file, g.Data, "alice", alicePassword)
	token := cliToken(t, g, file, "--user", "alice")
	tuf := startFakeTUF(t)

	keyFile := filepath.Join(g.Data, "signing-key.pem")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the signing key %s: %v %v, want a file of mode 0600 made at the first start", keyFile, fi, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.Split(string(keyPEM), "\n")[1] // a line of the private key
	gates := []*gate{g}
	t.Cleanup(func() {
		for _, g := range gates {
			if strings.Contains(g.log.String(), secret) {
				t.Error("npmgate logs its signing key")
			}
		}
	})
	show := gateCLI(t, file, g.Data, "", "signing-key", "show")
	var own map[string]any
	if err := json.Unmarshal([]byte(show), &own); err != nil || strings.Contains(show, secret) {
		t.Fatalf("npmgate signing-key show: %v\n%s", err, show)
	}
	t.Run("keys", func(t *testing.T) {
		r := get(t, g.URL+"-/npm/v1/keys")
		var doc struct{ Keys []any }
		if r.status != 200 || json.Unmarshal(r.body, &doc) != nil {
			t.Fatalf("GET /-/npm/v1/keys: %d %s", r.status, r.body)
		}
		var upKeys struct{ Keys []any }
		json.Unmarshal(reg.keys, &upKeys)
		if want := append(upKeys.Keys, own); !jsonEqual(mustJSON(t, doc.Keys), mustJSON(t, want)) {
			t.Errorf("GET /-/npm/v1/keys: %s, want the connector's keys and npmgate's %s", r.body, mustJSON(t, want))
		}
	})

	publisher := newSandbox(t)
	publisher.setUserrc(t, npmrcKey(g.URL)+":_authToken="+token)
	pkg := publisher.dir(t, local)
	writePublishable(t, pkg, local, "1.0.0", nil)
	mustSucceed(t, publisher.npm(t, pkg, g.URL, "publish"))

	sb := newSandbox(t)
	install := func(t *testing.T, project string, names ...string) {
		t.Helper()
		writeConsumer(t, project)
		args := []string{"install"}
		for _, n := range names {
			args = append(args, n+"@1.0.0")
		}
		mustSucceed(t, sb.npm(t, project, g.URL, args...))
		for _, n := range names {
			checkInstalledVersion(t, project, n, "1.0.0")
		}
	}
	audit := func(t *testing.T, project string) result {
		t.Helper()
		cache, err := os.MkdirTemp(sb.root, "npm-cache-")
		if err != nil {
			t.Fatal(err)
		}
		tuf.plant(t, cache)
		return sb.npmIn(t, project, g.URL, cache, tuf.env(sb), "audit", "signatures")
	}
	mixed, tampered := sb.dir(t, "mixed"), sb.dir(t, "tampered")
	install(t, mixed, local, good)
	install(t, tampered, local, good, bad)

	t.Run("verified", func(t *testing.T) {
		r := audit(t, mixed)
		mustSucceed(t, r)
		for _, want := range []string{"audited 2 packages", "2 packages have verified registry signatures"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("npm audit signatures output lacks %q:\n%s", want, r)
			}
		}
		for _, not := range []string{"missing", "invalid"} {
			if strings.Contains(r.out, not) {
				t.Errorf("npm audit signatures output says %q:\n%s", not, r)
			}
		}
	})

	t.Run("tampered", func(t *testing.T) {
		// The local document's integrity changed on disk, its stored
		// signature kept: npmgate serves what is stored, restarted so
		// that it reads it again.
		doc := filepath.Join(g.Data, "local", "npm", local+".json")
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		dist := d["packument"].(map[string]any)["versions"].(map[string]any)["1.0.0"].(map[string]any)["dist"].(map[string]any)
		if sigs, _ := dist["signatures"].([]any); len(sigs) != 1 {
			t.Fatalf("the stored version has dist.signatures %v, want npmgate's one", dist["signatures"])
		}
		dist["integrity"] = "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 64))
		writeFile(t, doc, string(mustJSON(t, d)))
		g.stop(t)
		g = startGate(t, reg.URL, g.Data, "--config", file)
		gates = append(gates, g)

		r := audit(t, tampered)
		mustFailWith(t, r, "audited 3 packages", "1 package has a verified registry signature",
			"2 packages have invalid registry signatures", local+"@1.0.0", bad+"@1.0.0",
			"Someone might have tampered with these packages")
		if strings.Contains(r.out, good+"@1.0.0 (") {
			t.Errorf("npm reports the good connector package:\n%s", r)
		}
	})
}

// TestScaleOutSigning: replicas given one key (signing.key from the
// environment) make no key of their own, and a version published
// through one is served by the other with the same signature, by that
// key, whose public half both answer. A replica given no key makes none
// either, says at start that it does not sign, and serves the stored
// signature as it is.
func TestScaleOutSigning(t *testing.T) {
	up := startUpstream(t, "")
	dbURL, s3 := testservices.Postgres(t), testservices.S3(t)
	cfg := strings.NewReplacer("UPSTREAM", up.URL, "DBURL", dbURL, "S3ENDPOINT", s3.Endpoint,
		"S3REGION", s3.Region, "S3BUCKET", s3.Bucket,
		"KEYS", fmt.Sprintf("    access_key: %s\n    secret_key: %s\n", s3.AccessKey, s3.SecretKey)).Replace(scaleoutConfig)
	unsignedCfg := filepath.Join(t.TempDir(), "unsigned.yaml")
	writeFile(t, unsignedCfg, cfg)
	signedCfg := filepath.Join(t.TempDir(), "signed.yaml")
	writeFile(t, signedCfg, cfg+"signing:\n  key: ${NPMGATE_SIGNING_KEY}\n")
	gateCLI(t, unsignedCfg, t.TempDir(), "", "migrate")

	pemKey := gateCLI(t, unsignedCfg, t.TempDir(), "", "signing-key", "generate")
	if block, _ := pem.Decode([]byte(pemKey)); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("npmgate signing-key generate printed %q, not a PEM private key", pemKey)
	}
	// The key in one line, as an environment variable holds it.
	oneLine := strings.TrimSpace(gateCLI(t, unsignedCfg, t.TempDir(), "", "signing-key", "generate", "--base64"))
	der, err := base64.StdEncoding.DecodeString(oneLine)
	if err != nil || strings.ContainsAny(oneLine, "\n -") {
		t.Fatalf("npmgate signing-key generate --base64 printed %q, not one base64 line (%v)", oneLine, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	pub := &k.(*ecdsa.PrivateKey).PublicKey
	env := []string{"NPMGATE_SIGNING_KEY=" + oneLine}
	start := func(cfg string, env []string) *gate {
		data := t.TempDir()
		return startGateWith(t, data, env, "--config", cfg, "--listen", "127.0.0.1:0", "--data", data)
	}
	r1, r2, r3 := start(signedCfg, env), start(signedCfg, env), start(unsignedCfg, nil)
	for i, g := range []*gate{r1, r2, r3} {
		if _, err := os.Stat(filepath.Join(g.Data, "signing-key.pem")); err == nil {
			t.Errorf("replica %d made a signing key of its own", i+1)
		}
	}
	if !strings.Contains(r3.log.String(), "local packages are not signed") {
		t.Errorf("the replica without a key does not say it signs nothing:\n%s", r3.log.String())
	}

	data := t.TempDir()
	gateCLI(t, unsignedCfg, data, alicePassword+"\n", "user", "add", "alice")
	token := strings.TrimSpace(gateCLI(t, unsignedCfg, data, "", "token", "create", "--user", "alice"))
	const name = "@corp/signed"
	tgz := npmTarball(t, name, "1.0.0")
	if r, err := putPublish(r1.URL+"@corp%2fsigned", npmPublishBody(t, name, "1.0.0", "latest", tgz), "Authorization", "Bearer "+token); err != nil || r.status != 200 {
		t.Fatalf("publish through replica 1: %d %s %v", r.status, r.body, err)
	}
	sigOf := func(g *gate) (string, string) {
		t.Helper()
		r := get(t, g.URL+"@corp%2fsigned", "Accept", "application/vnd.npm.install-v1+json")
		var doc struct {
			Versions map[string]struct {
				Dist struct {
					Integrity  string
					Signatures []struct{ Keyid, Sig string }
				}
			}
		}
		if r.status != 200 || json.Unmarshal(r.body, &doc) != nil {
			t.Fatalf("GET %s@corp/signed: %d %.300s", g.URL, r.status, r.body)
		}
		d := doc.Versions["1.0.0"].Dist
		if len(d.Signatures) != 1 {
			t.Fatalf("%s: dist.signatures %+v, want one", g.URL, d.Signatures)
		}
		return d.Integrity, d.Signatures[0].Sig
	}
	integrity, sig1 := sigOf(r1)
	raw, _ := base64.StdEncoding.DecodeString(sig1)
	h := sha256.Sum256([]byte(name + "@1.0.0:" + integrity))
	if !ecdsa.VerifyASN1(pub, h[:], raw) {
		t.Errorf("replica 1's signature does not verify with the configured key")
	}
	for i, g := range []*gate{r2, r3} {
		if _, sig := sigOf(g); sig != sig1 {
			t.Errorf("replica %d serves signature %s, replica 1 %s", i+2, sig, sig1)
		}
	}
	for i, g := range []*gate{r1, r2} {
		if strings.Contains(g.log.String(), oneLine[40:80]) {
			t.Errorf("replica %d logs the signing key", i+1)
		}
	}
	spki, _ := x509.MarshalPKIXPublicKey(pub)
	for i, g := range []*gate{r1, r2} {
		r := get(t, g.URL+"-/npm/v1/keys")
		if r.status != 200 || !strings.Contains(string(r.body), `"key":"`+base64.StdEncoding.EncodeToString(spki)+`"`) {
			t.Errorf("replica %d: GET /-/npm/v1/keys: %d %s, want the configured key", i+1, r.status, r.body)
		}
	}
}
