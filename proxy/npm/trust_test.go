package npm

import (
	"bytes"
	"encoding/json"
	"testing"
)

// testdata/provenance.json has npmjs's form of the trust fields:
// dist.signatures on most versions, dist.attestations with a provenance
// predicate on 2.0.3 and 3.0.0-rc.1, _npmUser.trustedPublisher on 2.0.3, and
// the null forms on 2.1.1 (which count as none).

func TestProvenanceAndInstallScriptFacts(t *testing.T) {
	p, err := Parse(readTestdata(t, "provenance.json"), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ prov, scripts bool }{
		"2.0.0":      {false, false},
		"2.0.3":      {true, false}, // attestation and trusted publisher
		"2.1.0":      {false, true}, // postinstall
		"2.1.1":      {false, true}, // gypfile: npm runs node-gyp rebuild; null trust fields
		"3.0.0-rc.1": {true, false}, // attestation only
	}
	for _, v := range p.Versions {
		w, ok := want[v.Version]
		if !ok {
			t.Fatalf("unexpected version %s", v.Version)
		}
		_, _, scripts := v.Meta()
		if got := v.Provenance(); got != w.prov || scripts != w.scripts {
			t.Errorf("%s: provenance %v, install script %v; want %v, %v", v.Version, got, scripts, w.prov, w.scripts)
		}
	}
	// Either field alone counts.
	for _, raw := range []string{
		`{"name":"x","version":"1.0.0","dist":{"tarball":"https://r/x/-/x-1.0.0.tgz","attestations":{"provenance":{"predicateType":"https://slsa.dev/provenance/v1"}}}}`,
		`{"name":"x","version":"1.0.0","_npmUser":{"name":"GitHub Actions","trustedPublisher":{"id":"github"}},"dist":{"tarball":"https://r/x/-/x-1.0.0.tgz"}}`,
	} {
		doc, err := Parse([]byte(`{"name":"x","versions":{"1.0.0":`+raw+`}}`), 0)
		if err != nil || len(doc.Versions) != 1 || !doc.Versions[0].Provenance() {
			t.Errorf("no provenance read from %s (%v)", raw, err)
		}
	}
}

// dists returns each version's dist.signatures and dist.attestations as
// compact JSON.
func dists(t *testing.T, versions map[string]json.RawMessage) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for v, raw := range versions {
		var obj struct {
			Dist struct {
				Signatures   json.RawMessage `json:"signatures"`
				Attestations json.RawMessage `json:"attestations"`
			} `json:"dist"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		var s, a bytes.Buffer
		json.Compact(&s, obj.Dist.Signatures)
		json.Compact(&a, obj.Dist.Attestations)
		out[v] = [2]string{s.String(), a.String()}
	}
	return out
}

func TestRenderKeepsSignaturesAndAttestations(t *testing.T) {
	src := readTestdata(t, "provenance.json")
	var upstream struct{ Versions map[string]json.RawMessage }
	if err := json.Unmarshal(src, &upstream); err != nil {
		t.Fatal(err)
	}
	want := dists(t, upstream.Versions)
	if want["2.0.3"][0] == "" || want["2.0.3"][1] == "" {
		t.Fatal("the test document lost its signatures or attestations")
	}
	p, err := Parse(src, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, abbr := range []bool{false, true} {
		var buf bytes.Buffer
		p.Render(&buf, testBase, abbr)
		var doc struct{ Versions map[string]json.RawMessage }
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		got := dists(t, doc.Versions)
		for v, w := range want {
			if got[v] != w {
				t.Errorf("abbreviated=%v %s: signatures, attestations = %s, %s; upstream %s, %s", abbr, v, got[v][0], got[v][1], w[0], w[1])
			}
		}
	}
	for _, v := range p.Versions {
		var buf bytes.Buffer
		p.RenderVersion(&buf, testBase, v)
		got := dists(t, map[string]json.RawMessage{v.Version: buf.Bytes()})
		if got[v.Version] != want[v.Version] {
			t.Errorf("version document %s: signatures, attestations = %v; upstream %v", v.Version, got[v.Version], want[v.Version])
		}
	}
}
