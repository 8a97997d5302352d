package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	var own map[string]any
	if err := json.Unmarshal([]byte(gateCLI(t, file, g.Data, "", "signing-key", "show")), &own); err != nil {
		t.Fatalf("npmgate signing-key show: %v", err)
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

		r := audit(t, tampered)
		mustFailWith(t, r, "audited 3 packages", "1 package has a verified registry signature",
			"2 packages have invalid registry signatures", local+"@1.0.0", bad+"@1.0.0",
			"Someone might have tampered with these packages")
		if strings.Contains(r.out, good+"@1.0.0 (") {
			t.Errorf("npm reports the good connector package:\n%s", r)
		}
	})
}
