package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// trustedDoc is a packument in npmjs's form with the trust fields
// (proxy/npm/testdata/provenance.json): 2.0.3 has provenance and a
// trusted publisher; 2.1.0 has neither and adds a postinstall; 2.1.1 has
// neither (null forms) and a binding.gyp; latest is 2.1.0.
func trustedDoc(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("npm/testdata/provenance.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trustDists is each version's dist.signatures and dist.attestations, as
// compact JSON.
func trustDists(t *testing.T, versions map[string]json.RawMessage) map[string]string {
	t.Helper()
	out := map[string]string{}
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
		var b bytes.Buffer
		json.Compact(&b, obj.Dist.Signatures)
		b.WriteString(" ")
		json.Compact(&b, obj.Dist.Attestations)
		out[v] = b.String()
	}
	return out
}

func TestTrustRulesHideDowngrades(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	src := trustedDoc(t)
	up.SetPackumentOverride("@acme/trusted", 200, "application/json", src)
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{Provenance: "no-downgrade", InstallScripts: "no-new"}))
	var upstream struct {
		Versions map[string]json.RawMessage
		Time     map[string]string
	}
	if err := json.Unmarshal(src, &upstream); err != nil {
		t.Fatal(err)
	}
	wantDists := trustDists(t, upstream.Versions)
	listed := []string{"2.0.0", "2.0.3", "3.0.0-rc.1"}

	for _, accept := range []string{corgi, "application/json"} {
		resp, body := g.get("/@acme%2ftrusted", "Accept", accept)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", accept, resp.StatusCode, body)
		}
		var doc struct {
			DistTags map[string]string `json:"dist-tags"`
			Versions map[string]json.RawMessage
			Time     map[string]string
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		var got []string
		for v := range doc.Versions {
			got = append(got, v)
		}
		slices.Sort(got)
		if !slices.Equal(got, listed) {
			t.Errorf("%s: versions %v, want %v", accept, got, listed)
		}
		if doc.DistTags["latest"] != "2.0.3" || doc.DistTags["next"] != "3.0.0-rc.1" {
			t.Errorf("%s: dist-tags %v, want latest moved to 2.0.3", accept, doc.DistTags)
		}
		// pnpm ignores time altogether when one listed version lacks it.
		for _, v := range listed {
			if doc.Time[v] != upstream.Time[v] {
				t.Errorf("%s: time[%s] = %q, upstream %q", accept, v, doc.Time[v], upstream.Time[v])
			}
		}
		for _, v := range []string{"2.1.0", "2.1.1"} {
			if _, ok := doc.Time[v]; ok {
				t.Errorf("%s: time still lists the hidden %s", accept, v)
			}
		}
		for v, d := range trustDists(t, doc.Versions) {
			if d != wantDists[v] {
				t.Errorf("%s: %s signatures and attestations %s, upstream %s", accept, v, d, wantDists[v])
			}
		}
		n := resp.Header.Get("npm-notice")
		// 2.1.1 keeps the scripts 2.1.0 brought in: new for it too.
		if !strings.Contains(n, "new-install-scripts: 2") {
			t.Errorf("%s: npm-notice %q", accept, n)
		}
	}
	for _, v := range listed {
		resp, body := g.get("/@acme%2ftrusted/" + v)
		if resp.StatusCode != 200 {
			t.Errorf("version document %s: %d %s", v, resp.StatusCode, body)
			continue
		}
		if d := trustDists(t, map[string]json.RawMessage{v: body}); d[v] != wantDists[v] {
			t.Errorf("version document %s: signatures and attestations %s, upstream %s", v, d[v], wantDists[v])
		}
	}

	for file, want := range map[string]string{
		"trusted-2.1.0.tgz": `blocked by policy: @acme/trusted@2.1.0 has an install script (preinstall, install, postinstall or binding.gyp) and the previous release 2.0.3 had none; install_scripts is "no-new"`,
		"trusted-2.1.1.tgz": `blocked by policy: @acme/trusted@2.1.1 has an install script (preinstall, install, postinstall or binding.gyp) that no accepted release had: it came in 2.1.0, which this rule hides too`,
	} {
		resp, body := g.get("/@acme/trusted/-/" + file)
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		if resp.StatusCode != 403 || !strings.HasPrefix(e.Error, want) {
			t.Errorf("GET %s: %d %s\nwant 403 %q", file, resp.StatusCode, body, want)
		}
	}
	if n := up.Requests().Tarballs; n != 0 {
		t.Errorf("%d blocked tarballs were fetched upstream", n)
	}

	ex, err := g.srv.Explain(context.Background(), "", "@acme/trusted")
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, v := range ex.Versions {
		rules[v.Version] = v.Rule
	}
	want := map[string]string{"2.0.0": "", "2.0.3": "", "2.1.0": "new-install-scripts", "2.1.1": "new-install-scripts", "3.0.0-rc.1": ""}
	for v, r := range want {
		if rules[v] != r {
			t.Errorf("explain %s: rule %q, want %q", v, rules[v], r)
		}
	}

	// The provenance rule alone: 2.1.1 lost what 2.0.3 had.
	gp := startGate(t, up, withFilter(t, "up", &filter.Spec{Provenance: "no-downgrade"}))
	resp, body := gp.get("/@acme/trusted/-/trusted-2.1.1.tgz")
	wantProv := `blocked by policy: @acme/trusted@2.1.1 has no provenance; 2.0.3 of the same major line (2.x) had one (npm trusted publishing / attestation); provenance is "no-downgrade"`
	if resp.StatusCode != 403 || !strings.Contains(string(body), strings.ReplaceAll(wantProv, `"`, `\"`)) {
		t.Errorf("provenance only: GET trusted-2.1.1.tgz: %d %s\nwant 403 %q", resp.StatusCode, body, wantProv)
	}
}

// A version another rule hides is still history: with 2.0.3 (the one
// release with provenance) blocked, 2.1.0 and 2.1.1 are still downgrades.
func TestTrustHistoryCountsHiddenVersions(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	up.SetPackumentOverride("@acme/trusted", 200, "application/json", trustedDoc(t))
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{Provenance: "no-downgrade", Block: []string{"@acme/trusted@2.0.3"}}))
	_, body := g.get("/@acme%2ftrusted", "Accept", corgi)
	d := decode(t, body)
	if len(d.Versions) != 2 || d.DistTags["latest"] != "2.0.0" {
		t.Errorf("versions %v, latest %q; want 2.0.0 and 3.0.0-rc.1, latest 2.0.0", d.Versions, d.DistTags["latest"])
	}
	for file, rule := range map[string]string{"trusted-2.0.3.tgz": "block entry", "trusted-2.1.0.tgz": "2.0.3 of the same major line", "trusted-2.1.1.tgz": "2.0.3 of the same major line"} {
		if resp, body := g.get("/@acme/trusted/-/" + file); resp.StatusCode != 403 || !strings.Contains(string(body), rule) {
			t.Errorf("GET %s: %d %s, want 403 naming %q", file, resp.StatusCode, body, rule)
		}
	}
}

// Without a trust rule the same document is served whole, its trust
// fields and times intact.
func TestTrustFieldsKeptWithoutRules(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	src := trustedDoc(t)
	up.SetPackumentOverride("@acme/trusted", 200, "application/json", src)
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{Block: []string{"@acme/trusted@2.0.0"}}))
	var upstream struct {
		Versions map[string]json.RawMessage
		Time     map[string]string
	}
	json.Unmarshal(src, &upstream)
	wantDists := trustDists(t, upstream.Versions)
	for _, accept := range []string{corgi, "application/json"} {
		_, body := g.get("/@acme%2ftrusted", "Accept", accept)
		var doc struct {
			Versions map[string]json.RawMessage
			Time     map[string]string
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Versions) != 4 {
			t.Errorf("%s: %d versions, want 4 (2.0.0 blocked)", accept, len(doc.Versions))
		}
		got := trustDists(t, doc.Versions)
		for v := range doc.Versions {
			if got[v] != wantDists[v] {
				t.Errorf("%s: %s signatures and attestations %s, upstream %s", accept, v, got[v], wantDists[v])
			}
			if doc.Time[v] == "" || doc.Time[v] != upstream.Time[v] {
				t.Errorf("%s: time[%s] = %q, upstream %q", accept, v, doc.Time[v], upstream.Time[v])
			}
		}
	}
}
