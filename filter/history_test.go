package filter

import (
	"strings"
	"testing"
	"time"
)

// hv is a version for the history tests: p marks provenance, s install
// scripts.
type hv struct {
	v    string
	p, s bool
}

func histFacts(vs ...hv) []Facts {
	fs := make([]Facts, len(vs))
	for i, x := range vs {
		fs[i] = Facts{Version: x.v, Published: old, Provenance: x.p, HasInstallScript: x.s}
	}
	return fs
}

func TestWithHistory(t *testing.T) {
	type want struct {
		earlierProv, prev, newSince string
		prevScripts                 bool
	}
	cases := []struct {
		desc string
		vs   []hv
		want map[string]want
	}{
		{
			desc: "first release has no history",
			vs:   []hv{{v: "1.0.0", s: true}},
			want: map[string]want{"1.0.0": {}},
		},
		{
			desc: "semver order, not document order",
			vs:   []hv{{v: "1.2.0"}, {v: "1.0.0", p: true}, {v: "1.1.0", s: true}, {v: "1.3.0"}},
			want: map[string]want{
				"1.0.0": {},
				"1.1.0": {earlierProv: "1.0.0", prev: "1.0.0"},
				// 1.1.0's scripts were new: they are no accepted history.
				"1.2.0": {earlierProv: "1.0.0", prev: "1.1.0", newSince: "1.1.0"},
				"1.3.0": {earlierProv: "1.0.0", prev: "1.2.0"},
			},
		},
		{
			desc: "the highest earlier release with provenance is named",
			vs:   []hv{{v: "2.0.0", p: true}, {v: "2.0.3", p: true}, {v: "2.0.4"}, {v: "2.1.0"}},
			want: map[string]want{
				"2.0.3": {earlierProv: "2.0.0", prev: "2.0.0"},
				"2.0.4": {earlierProv: "2.0.3", prev: "2.0.3"},
				"2.1.0": {earlierProv: "2.0.3", prev: "2.0.4"},
			},
		},
		{
			desc: "provenance does not cross major lines; scripts do",
			vs:   []hv{{v: "1.9.0", p: true}, {v: "2.0.0", s: true}, {v: "1.9.1"}},
			want: map[string]want{
				"2.0.0": {prev: "1.9.1"},
				"1.9.1": {earlierProv: "1.9.0", prev: "1.9.0"},
			},
		},
		{
			desc: "a later release is not earlier (a backport after provenance was adopted)",
			vs:   []hv{{v: "3.0.0", p: true}, {v: "2.5.0"}, {v: "3.1.0", p: true}, {v: "3.0.1"}},
			want: map[string]want{
				"2.5.0": {},
				"3.0.1": {earlierProv: "3.0.0", prev: "3.0.0", prevScripts: false},
			},
		},
		{
			desc: "0.x: the minor is the line",
			vs:   []hv{{v: "0.3.0", p: true}, {v: "0.3.1"}, {v: "0.4.0"}},
			want: map[string]want{
				"0.3.1": {earlierProv: "0.3.0", prev: "0.3.0"},
				"0.4.0": {prev: "0.3.1"},
			},
		},
		{
			desc: "0.0.x is one line",
			vs:   []hv{{v: "0.0.1", p: true}, {v: "0.0.2"}, {v: "0.1.0"}},
			want: map[string]want{
				"0.0.2": {earlierProv: "0.0.1", prev: "0.0.1"},
				"0.1.0": {prev: "0.0.2"},
			},
		},
		{
			desc: "prereleases compare with the releases before them and are no history",
			vs: []hv{{v: "1.0.0", p: true}, {v: "2.0.0-beta.1", p: true, s: true}, {v: "2.0.0-beta.2", s: true},
				{v: "2.0.0"}, {v: "1.1.0-rc.1"}, {v: "2.0.1-0"}},
			want: map[string]want{
				"2.0.0-beta.1": {prev: "1.0.0"},
				"2.0.0-beta.2": {prev: "1.0.0"}, // not beta.1: a prerelease is no history
				"2.0.0":        {prev: "1.0.0"}, // the beta's provenance is no promise for 2.x
				"1.1.0-rc.1":   {earlierProv: "1.0.0", prev: "1.0.0"},
				"2.0.1-0":      {prev: "2.0.0"},
			},
		},
		{
			desc: "build metadata is ignored: equal versions are not earlier",
			vs:   []hv{{v: "1.0.0", p: true}, {v: "1.0.0+rebuild"}, {v: "1.0.1+b.2"}},
			want: map[string]want{
				"1.0.0+rebuild": {},
				"1.0.1+b.2":     {earlierProv: "1.0.0", prev: "1.0.0+rebuild"},
			},
		},
		{
			desc: "an invalid key is compared with everything (fail closed)",
			vs:   []hv{{v: "0.9.0", s: true}, {v: "1.0.0", p: true, s: true}, {v: "2.0.0", s: true}, {v: "v3"}},
			want: map[string]want{"v3": {earlierProv: "1.0.0", prev: "2.0.0", prevScripts: true}},
		},
		{
			desc: "invalid keys are no history",
			vs:   []hv{{v: "latest", p: true, s: true}, {v: "1.0.0"}, {v: "1.0.1"}},
			want: map[string]want{"1.0.0": {}, "1.0.1": {prev: "1.0.0"}},
		},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			fs := WithHistory(histFacts(c.vs...))
			for _, f := range fs {
				w, ok := c.want[f.Version]
				if !ok {
					continue
				}
				if f.EarlierProvenance != w.earlierProv || f.PreviousRelease != w.prev || f.PreviousHadScripts != w.prevScripts || f.NewScriptsSince != w.newSince {
					t.Errorf("%s: earlier provenance %q, previous %q (scripts %v, new since %q); want %q, %q (%v, %q)",
						f.Version, f.EarlierProvenance, f.PreviousRelease, f.PreviousHadScripts, f.NewScriptsSince, w.earlierProv, w.prev, w.prevScripts, w.newSince)
				}
			}
		})
	}
	// Stale history fields are overwritten.
	fs := []Facts{{Version: "1.0.0", EarlierProvenance: "0.9.0", PreviousRelease: "0.9.0", PreviousHadScripts: true}}
	if f := WithHistory(fs)[0]; f.EarlierProvenance != "" || f.PreviousRelease != "" || f.PreviousHadScripts {
		t.Errorf("stale history kept: %+v", f)
	}
}

// decideAll runs WithHistory on the versions and decides each one, as the
// proxy does for a document.
func decideAll(t *testing.T, p *Policy, name string, vs ...hv) map[string]Decision {
	t.Helper()
	out := map[string]Decision{}
	for _, f := range WithHistory(histFacts(vs...)) {
		out[f.Version] = p.Version(name, f, now)
	}
	return out
}

func TestTrustRules(t *testing.T) {
	prov := Spec{Provenance: "no-downgrade"}
	noNew := Spec{InstallScripts: "no-new"}
	cases := []struct {
		desc string
		spec Spec
		name string
		vs   []hv
		// rules maps versions to the rule that blocks them ("" allowed);
		// versions not listed are not checked.
		rules  map[string]string
		reason map[string]string
	}{
		{
			desc: "provenance downgrade", spec: prov, name: "x",
			vs:    []hv{{v: "1.0.0"}, {v: "2.0.0"}, {v: "2.0.3", p: true}, {v: "2.1.0"}, {v: "2.1.1", p: true}},
			rules: map[string]string{"1.0.0": "", "2.0.0": "", "2.0.3": "", "2.1.0": "provenance-downgrade", "2.1.1": ""},
			reason: map[string]string{"2.1.0": `x@2.1.0 has no provenance; 2.0.3 of the same major line (2.x) had one ` +
				`(npm trusted publishing / attestation); provenance is "no-downgrade"`},
		},
		{
			desc: "a new major line without provenance is no downgrade", spec: prov, name: "x",
			vs:    []hv{{v: "1.4.0", p: true}, {v: "2.0.0"}, {v: "1.4.1"}},
			rules: map[string]string{"2.0.0": "", "1.4.1": "provenance-downgrade"},
		},
		{
			desc: "0.x lines", spec: prov, name: "x",
			vs:     []hv{{v: "0.1.0", p: true}, {v: "0.1.1"}, {v: "0.2.0"}},
			rules:  map[string]string{"0.1.1": "provenance-downgrade", "0.2.0": ""},
			reason: map[string]string{"0.1.1": `x@0.1.1 has no provenance; 0.1.0 of the same major line (0.1.x) had one (npm trusted publishing / attestation); provenance is "no-downgrade"`},
		},
		{
			desc: "a prerelease without provenance after a release with it", spec: prov, name: "x",
			vs:    []hv{{v: "3.0.0", p: true}, {v: "3.1.0-beta.1"}, {v: "4.0.0-rc.1"}},
			rules: map[string]string{"3.1.0-beta.1": "provenance-downgrade", "4.0.0-rc.1": ""},
		},
		{
			desc: "provenance exemption", spec: Spec{Provenance: "no-downgrade", ProvenanceExempt: []string{"@acme/*"}}, name: "@acme/x",
			vs:    []hv{{v: "1.0.0", p: true}, {v: "1.0.1"}},
			rules: map[string]string{"1.0.1": ""},
		},
		{
			desc: "the exemption is by name", spec: Spec{Provenance: "no-downgrade", ProvenanceExempt: []string{"@acme/*"}}, name: "@other/x",
			vs:    []hv{{v: "1.0.0", p: true}, {v: "1.0.1"}},
			rules: map[string]string{"1.0.1": "provenance-downgrade"},
		},
		{
			// The entry allows 1.0.1 alone; scripts it brought are still
			// new for 1.0.2 (install_scripts_allow accepts a package's).
			desc: "an allow entry overrides", spec: Spec{Provenance: "no-downgrade", InstallScripts: "no-new", Allow: []string{"x@1.0.1"}}, name: "x",
			vs:    []hv{{v: "1.0.0", p: true}, {v: "1.0.1", s: true}, {v: "1.0.2", s: true}, {v: "1.0.3"}},
			rules: map[string]string{"1.0.1": "", "1.0.2": "new-install-scripts", "1.0.3": "provenance-downgrade"},
		},
		{
			desc: "off by default", spec: Spec{Block: []string{"other@*"}}, name: "x",
			vs:    []hv{{v: "1.0.0", p: true}, {v: "1.0.1", s: true}},
			rules: map[string]string{"1.0.1": ""},
		},
		{
			desc: "new install script", spec: noNew, name: "x",
			vs:    []hv{{v: "1.0.0"}, {v: "1.1.0"}, {v: "1.2.0", s: true}},
			rules: map[string]string{"1.0.0": "", "1.1.0": "", "1.2.0": "new-install-scripts"},
			reason: map[string]string{"1.2.0": `x@1.2.0 has an install script (preinstall, install, postinstall or binding.gyp) ` +
				`and the previous release 1.1.0 had none; install_scripts is "no-new"`},
		},
		{
			desc: "scripts kept from the previous release pass; a first release with scripts passes", spec: noNew, name: "x",
			vs:    []hv{{v: "1.0.0", s: true}, {v: "1.0.1", s: true}, {v: "1.0.2"}, {v: "1.0.3", s: true}},
			rules: map[string]string{"1.0.0": "", "1.0.1": "", "1.0.2": "", "1.0.3": "new-install-scripts"},
		},
		{
			desc: "scripts compare across major lines", spec: noNew, name: "x",
			vs:    []hv{{v: "1.9.0"}, {v: "2.0.0", s: true}},
			rules: map[string]string{"2.0.0": "new-install-scripts"},
		},
		{
			desc: "a prerelease cannot bring scripts in", spec: noNew, name: "x",
			vs:    []hv{{v: "1.0.0"}, {v: "2.0.0-beta.1", s: true}, {v: "2.0.0-beta.2", s: true}, {v: "2.0.0", s: true}},
			rules: map[string]string{"2.0.0-beta.1": "new-install-scripts", "2.0.0-beta.2": "new-install-scripts", "2.0.0": "new-install-scripts"},
		},
		{
			desc: "install_scripts_allow exempts", spec: Spec{InstallScripts: "no-new", InstallScriptsAllow: []string{"esbuild"}}, name: "esbuild",
			vs:    []hv{{v: "0.1.0"}, {v: "0.1.1", s: true}},
			rules: map[string]string{"0.1.1": ""},
		},
		{
			// 1.0.1 is hidden by a block entry but still shows that the
			// package was published with provenance and with scripts.
			desc: "a blocked earlier version is history", spec: Spec{Provenance: "no-downgrade", InstallScripts: "no-new", Block: []string{"x@1.0.1"}}, name: "x",
			vs:    []hv{{v: "1.0.0"}, {v: "1.0.1", p: true, s: true}, {v: "1.0.2", s: true}},
			rules: map[string]string{"1.0.1": "block", "1.0.2": "new-install-scripts"},
		},
		{
			// The scripts 1.1.0 was refused for do not come in with the
			// next release.
			desc: "a second release does not carry new scripts in", spec: noNew, name: "x",
			vs:    []hv{{v: "1.0.0"}, {v: "1.1.0", s: true}, {v: "1.1.1", s: true}, {v: "1.2.0", s: true}, {v: "1.3.0"}, {v: "1.4.0", s: true}},
			rules: map[string]string{"1.0.0": "", "1.1.0": "new-install-scripts", "1.1.1": "new-install-scripts", "1.2.0": "new-install-scripts", "1.3.0": "", "1.4.0": "new-install-scripts"},
			reason: map[string]string{"1.2.0": `x@1.2.0 has an install script (preinstall, install, postinstall or binding.gyp) that no accepted release had: ` +
				`it came in 1.1.0, which this rule hides too; install_scripts is "no-new" (list the package in install_scripts_allow to accept it)`},
		},
		{
			desc: "an invalid key fails closed", spec: prov, name: "x",
			vs:     []hv{{v: "1.0.0", p: true}, {v: "v2"}},
			rules:  map[string]string{"v2": "provenance-downgrade"},
			reason: map[string]string{"v2": `x@v2 has no provenance and is not valid semver, so it is compared with every release: 1.0.0 had one (npm trusted publishing / attestation); provenance is "no-downgrade"`},
		},
		{
			desc: "install-scripts block comes first", spec: Spec{InstallScripts: "block", Provenance: "no-downgrade"}, name: "x",
			vs:    []hv{{v: "1.0.0", p: true}, {v: "1.0.1", s: true}},
			rules: map[string]string{"1.0.1": "install-scripts"},
		},
		{
			desc: "untrusted versions are quoted", spec: noNew, name: "x",
			vs:     []hv{{v: "1.0.0"}, {v: "1.0.1+a\"b", s: true}},
			reason: map[string]string{`1.0.1+a"b`: `x@"1.0.1+a\"b" has an install script (preinstall, install, postinstall or binding.gyp) and the previous release 1.0.0 had none; install_scripts is "no-new"`},
		},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			got := decideAll(t, mustCompile(t, &c.spec), c.name, c.vs...)
			for v, rule := range c.rules {
				if d := got[v]; d.Rule != rule || d.Allowed != (rule == "") {
					t.Errorf("%s: %+v, want rule %q", v, d, rule)
				}
			}
			for v, reason := range c.reason {
				d := got[v]
				if d.Reason != reason {
					t.Errorf("%s: reason %q\nwant %q", v, d.Reason, reason)
				}
				checkASCII(t, d.Reason)
			}
		})
	}
}

func TestTrustRulesChainAndLabels(t *testing.T) {
	conn := mustCompile(t, &Spec{Provenance: "no-downgrade"}).WithLabel("connector npmjs")
	feed := mustCompile(t, &Spec{InstallScripts: "no-new"}).WithLabel("feed npm")
	p := Chain(conn, feed)
	if !p.NeedsHistory() || !conn.NeedsHistory() || mustCompile(t, &Spec{InstallScripts: "block"}).NeedsHistory() || (*Policy)(nil).NeedsHistory() {
		t.Error("NeedsHistory")
	}
	got := decideAll(t, p, "x", hv{v: "1.0.0", p: true}, hv{v: "1.0.1", p: true, s: true}, hv{v: "1.0.2"})
	if d := got["1.0.1"]; d.Rule != "new-install-scripts" || d.Policy != "feed npm" {
		t.Errorf("1.0.1: %+v", d)
	}
	if d := got["1.0.2"]; d.Rule != "provenance-downgrade" || d.Policy != "connector npmjs" {
		t.Errorf("1.0.2: %+v", d)
	}
}

func TestTrustCompile(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{Provenance: "on"}, `provenance: "on": want "off" or "no-downgrade"`},
		{Spec{Provenance: "no_downgrade"}, `provenance: "no_downgrade": want "off" or "no-downgrade"`},
		{Spec{ProvenanceExempt: []string{"a b"}}, `provenance_exempt[0]: "a b": bad name pattern`},
		{Spec{InstallScripts: "new"}, `install_scripts: "new": want "allow", "block" or "no-new"`},
	} {
		if _, err := Compile(&c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%+v): %v, want %q", c.spec, err, c.want)
		}
	}
	if p := mustCompile(t, &Spec{Provenance: "off", ProvenanceExempt: []string{"x"}}); !p.Empty() {
		t.Error("provenance: off is a rule")
	}
	// Each setting has its own fingerprint; rule sets without them keep
	// theirs (cached documents stay valid across the upgrade).
	seen := map[string]string{}
	for _, s := range []Spec{
		{InstallScripts: "block"},
		{InstallScripts: "no-new"},
		{Provenance: "no-downgrade"},
		{Provenance: "no-downgrade", ProvenanceExempt: []string{"x"}},
		{Provenance: "no-downgrade", InstallScripts: "no-new"},
	} {
		fp := mustCompile(t, &s).Fingerprint()
		if prev, dup := seen[fp]; dup || fp == "" {
			t.Errorf("%+v: fingerprint %q (also %s)", s, fp, prev)
		}
		seen[fp] = s.InstallScripts + s.Provenance
	}
	// Fingerprints computed by the build before these rules.
	for want, s := range map[string]Spec{
		"dcac0c49180b71f9de028cc844a2d3c3": {Block: []string{"lodash@<4.17.21"}, MinReleaseAge: Duration(72 * time.Hour)},
		"a2380dcf410037e3605df211b4ff5fc3": {InstallScripts: "block", InstallScriptsAllow: []string{"esbuild"}},
	} {
		if fp := mustCompile(t, &s).Fingerprint(); fp != want {
			t.Errorf("%+v: fingerprint %s, was %s", s, fp, want)
		}
	}
	// The YAML keys.
	s, err := decodeSpec(t, "provenance: no-downgrade\nprovenance_exempt: [\"@acme/*\"]\ninstall_scripts: no-new\n")
	if err != nil || s.Provenance != "no-downgrade" || len(s.ProvenanceExempt) != 1 || s.InstallScripts != "no-new" {
		t.Fatalf("decoded %+v, %v", s, err)
	}
	mustCompile(t, s)
}

// The trust rules keep the allow path free of allocations.
func TestTrustAllowPathDoesNotAllocate(t *testing.T) {
	p := mustCompile(t, &Spec{Provenance: "no-downgrade", InstallScripts: "no-new", ProvenanceExempt: []string{"@acme/*"}})
	fs := WithHistory(histFacts(hv{v: "1.0.0", p: true, s: true}, hv{v: "1.0.1", p: true, s: true}, hv{v: "2.0.0"}, hv{v: "2.0.1-rc.1"}))
	for _, f := range fs {
		if d := p.Version("pkg", f, now); !d.Allowed {
			t.Fatalf("%s blocked: %+v", f.Version, d)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() {
		for _, f := range fs {
			p.Version("pkg", f, now)
		}
	}); allocs != 0 {
		t.Errorf("allow path allocates %v times", allocs)
	}
}
