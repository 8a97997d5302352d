package filter

import (
	"strings"
	"testing"
	"time"
)

var (
	now = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	old = now.Add(-365 * 24 * time.Hour)
)

func mustCompile(t testing.TB, s *Spec) *Policy {
	t.Helper()
	p, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestName(t *testing.T) {
	cases := []struct {
		desc     string
		spec     Spec
		name     string
		rule     string
		reason   string
		allowedT bool
	}{
		{desc: "empty spec allows", name: "lodash", allowedT: true},
		{desc: "exclude exact", spec: Spec{Exclude: []string{"event-stream"}}, name: "event-stream",
			rule: "exclude", reason: `event-stream is excluded by exclude entry "event-stream"`},
		{desc: "exclude does not touch others", spec: Spec{Exclude: []string{"event-stream"}}, name: "event-stream2", allowedT: true},
		{desc: "exclude scope", spec: Spec{Exclude: []string{"@evil/*"}}, name: "@evil/x", rule: "exclude"},
		{desc: "exclude scope shorthand", spec: Spec{Exclude: []string{"@evil"}}, name: "@evil/x", rule: "exclude"},
		{desc: "exclude is case-sensitive", spec: Spec{Exclude: []string{"jsonstream"}}, name: "JSONStream", allowedT: true},
		{desc: "include matches", spec: Spec{Include: []string{"@types/*", "lodash*"}}, name: "lodash.merge", allowedT: true},
		{desc: "include scope", spec: Spec{Include: []string{"@types/*", "lodash*"}}, name: "@types/node", allowedT: true},
		{desc: "include scope shorthand", spec: Spec{Include: []string{"@babel"}}, name: "@babel/core", allowedT: true},
		{desc: "not included", spec: Spec{Include: []string{"@types/*", "lodash*"}}, name: "react",
			rule: "include", reason: `react is not matched by any include entry ("@types/*", "lodash*")`},
		{desc: "not included, long list", spec: Spec{Include: []string{"a", "b", "c", "d", "e", "f", "g"}}, name: "z",
			rule: "include", reason: `z is not matched by any include entry ("a", "b", "c", "d", "e", and 2 more)`},
		{desc: "!name in include excludes", spec: Spec{Include: []string{"*", "!left-pad"}}, name: "left-pad",
			rule: "exclude", reason: `left-pad is excluded by "!left-pad"`},
		{desc: "!name wins whatever the order", spec: Spec{Include: []string{"!left-pad", "left-pad"}}, name: "left-pad", rule: "exclude"},
		{desc: "only !name: everything else included", spec: Spec{Include: []string{"!left-pad"}}, name: "right-pad", allowedT: true},
		{desc: "exclude wins over include", spec: Spec{Include: []string{"@types/*"}, Exclude: []string{"@types/evil"}}, name: "@types/evil",
			rule: "exclude", reason: `@types/evil is excluded by exclude entry "@types/evil"`},
		{desc: "exclude before !name in messages", spec: Spec{Include: []string{"!x"}, Exclude: []string{"x"}}, name: "x",
			reason: `x is excluded by exclude entry "x"`, rule: "exclude"},
		{desc: "untrusted name is quoted", spec: Spec{Include: []string{"a"}}, name: "b\r\nX-Evil: 1", rule: "include",
			reason: `"b\r\nX-Evil: 1" is not matched by any include entry ("a")`},
		{desc: "version rules do not decide names", spec: Spec{Block: []string{"x@*"}, MinReleaseAge: Duration(time.Hour)}, name: "x", allowedT: true},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			p := mustCompile(t, &c.spec)
			d := p.Name(c.name)
			if d.Allowed != c.allowedT || (c.allowedT && (d.Rule != "" || d.Reason != "")) {
				t.Fatalf("Name(%q) = %+v, want allowed=%v", c.name, d, c.allowedT)
			}
			if c.rule != "" && d.Rule != c.rule {
				t.Errorf("rule = %q, want %q", d.Rule, c.rule)
			}
			if c.reason != "" && d.Reason != c.reason {
				t.Errorf("reason = %q\nwant     %q", d.Reason, c.reason)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	type tc struct {
		desc   string
		spec   Spec
		name   string
		f      Facts
		rule   string // "" = allowed
		reason string // exact when set
	}
	hour := time.Hour
	cases := []tc{
		// name rules apply to versions too
		{desc: "excluded package", spec: Spec{Exclude: []string{"x"}}, name: "x", f: Facts{Version: "1.0.0", Published: old}, rule: "exclude"},
		{desc: "not included package", spec: Spec{Include: []string{"y"}}, name: "x", f: Facts{Version: "1.0.0"}, rule: "include"},

		// block
		{desc: "block below", spec: Spec{Block: []string{"lodash@<4.17.21"}}, name: "lodash", f: Facts{Version: "4.17.20"},
			rule: "block", reason: `lodash@4.17.20 is blocked by block entry "lodash@<4.17.21"`},
		{desc: "block: fixed version passes", spec: Spec{Block: []string{"lodash@<4.17.21"}}, name: "lodash", f: Facts{Version: "4.17.21"}},
		{desc: "block: other package passes", spec: Spec{Block: []string{"lodash@<4.17.21"}}, name: "lodash-es", f: Facts{Version: "1.0.0"}},
		{desc: "block scoped range with space", spec: Spec{Block: []string{"@scope/x@>=2.0.0 <2.1.0"}}, name: "@scope/x", f: Facts{Version: "2.0.7"}, rule: "block"},
		{desc: "block scoped range upper bound", spec: Spec{Block: []string{"@scope/x@>=2.0.0 <2.1.0"}}, name: "@scope/x", f: Facts{Version: "2.1.0"}},
		{desc: "block every version", spec: Spec{Block: []string{"x@*"}}, name: "x", f: Facts{Version: "0.0.1"}, rule: "block"},
		{desc: "block * covers prereleases", spec: Spec{Block: []string{"x@*"}}, name: "x", f: Facts{Version: "3.0.0-rc.1"}, rule: "block"},
		{desc: "block name pattern", spec: Spec{Block: []string{"@evil/*@*"}}, name: "@evil/y", f: Facts{Version: "1.0.0"}, rule: "block"},
		{desc: "block scope shorthand", spec: Spec{Block: []string{"@evil@>=1"}}, name: "@evil/y", f: Facts{Version: "1.0.0"}, rule: "block"},
		{desc: "block >= matches a prerelease of a blocked release", spec: Spec{Block: []string{"x@>=2.0.0"}}, name: "x", f: Facts{Version: "2.1.0-beta.1"}, rule: "block"},
		{desc: "block >= matches a prerelease of the bound itself", spec: Spec{Block: []string{"x@>=2.0.0"}}, name: "x", f: Facts{Version: "2.0.0-beta.1"}, rule: "block"},
		{desc: "block < matches a prerelease below the bound", spec: Spec{Block: []string{"lodash@<4.17.21"}}, name: "lodash", f: Facts{Version: "4.17.21-rc.1"}, rule: "block"},
		{desc: "block exact matches its prereleases", spec: Spec{Block: []string{"evil@1.2.3"}}, name: "evil", f: Facts{Version: "1.2.3-0"}, rule: "block"},
		{desc: "block ^ prerelease inside", spec: Spec{Block: []string{"x@^1.2.0"}}, name: "x", f: Facts{Version: "1.5.0-alpha"}, rule: "block"},
		{desc: "block < bound: the bound's own prereleases precede it", spec: Spec{Block: []string{"x@<2.0.0"}}, name: "x", f: Facts{Version: "2.0.0-beta"}, rule: "block"},
		{desc: "block: prerelease of an unblocked release passes", spec: Spec{Block: []string{"x@<2.0.0"}}, name: "x", f: Facts{Version: "2.0.1-beta"}},
		{desc: "block exact with build metadata", spec: Spec{Block: []string{"evil@1.2.3"}}, name: "evil", f: Facts{Version: "1.2.3+build.5"}, rule: "block",
			reason: `evil@1.2.3+build.5 is blocked by block entry "evil@1.2.3"`},
		{desc: "block range with build metadata", spec: Spec{Block: []string{"x@<=1.0.0"}}, name: "x", f: Facts{Version: "1.0.0+anything"}, rule: "block"},
		{desc: "block: build metadata does not lift a version", spec: Spec{Block: []string{"x@<1.0.1"}}, name: "x", f: Facts{Version: "1.0.0+zzz"}, rule: "block"},
		{desc: "second block entry names itself", spec: Spec{Block: []string{"a@*", "x@1.x"}}, name: "x", f: Facts{Version: "1.4.0"},
			rule: "block", reason: `x@1.4.0 is blocked by block entry "x@1.x"`},

		// invalid versions
		{desc: "invalid version under a block rule fails closed", spec: Spec{Block: []string{"x@<2"}}, name: "x", f: Facts{Version: "v1.0.0"},
			rule: "invalid-version", reason: `x@v1.0.0 is not a valid semver version, so block entry "x@<2" cannot be checked (fail closed)`},
		{desc: "garbage version quoted", spec: Spec{Block: []string{"x@<2"}}, name: "x", f: Facts{Version: "1\n2"},
			rule: "invalid-version", reason: `x@"1\n2" is not a valid semver version, so block entry "x@<2" cannot be checked (fail closed)`},
		{desc: "invalid version under a deny entry fails closed", spec: Spec{Deny: []string{"x@1.0.0"}}, name: "x", f: Facts{Version: "1.0"},
			rule: "invalid-version", reason: `x@1.0 is not a valid semver version, so deny entry "x@1.0.0" cannot be checked (fail closed)`},
		{desc: "invalid version not allow-listable", spec: Spec{Block: []string{"x@*"}, Allow: []string{"x@*"}}, name: "x", f: Facts{Version: "latest"}, rule: "invalid-version"},
		{desc: "invalid version without range rules for the name passes", spec: Spec{Block: []string{"y@<2"}}, name: "x", f: Facts{Version: "garbage", Published: old}},
		{desc: "invalid version with only an age rule passes", spec: Spec{MinReleaseAge: Duration(hour)}, name: "x", f: Facts{Version: "garbage", Published: old}},

		// deny
		{desc: "deny exact", spec: Spec{Deny: []string{"event-stream@3.3.6"}}, name: "event-stream", f: Facts{Version: "3.3.6"},
			rule: "deny", reason: `event-stream@3.3.6 is a known-malicious version (deny entry "event-stream@3.3.6")`},
		{desc: "deny is exact", spec: Spec{Deny: []string{"event-stream@3.3.6"}}, name: "event-stream", f: Facts{Version: "3.3.5"}},
		{desc: "deny prerelease is not the release", spec: Spec{Deny: []string{"x@1.0.0"}}, name: "x", f: Facts{Version: "1.0.0-rc.1"}},
		{desc: "deny ignores build metadata", spec: Spec{Deny: []string{"x@1.0.0"}}, name: "x", f: Facts{Version: "1.0.0+rebuilt"}, rule: "deny"},
		{desc: "deny scoped", spec: Spec{Deny: []string{"@ctrl/tinycolor@4.1.1"}}, name: "@ctrl/tinycolor", f: Facts{Version: "4.1.1"}, rule: "deny"},
		{desc: "deny wins over allow", spec: Spec{Deny: []string{"x@1.0.0"}, Allow: []string{"x@*"}}, name: "x", f: Facts{Version: "1.0.0"}, rule: "deny"},

		// allow
		{desc: "allow overrides block", spec: Spec{Block: []string{"x@<2"}, Allow: []string{"x@1.5.0"}}, name: "x", f: Facts{Version: "1.5.0"}},
		{desc: "allow does not widen", spec: Spec{Block: []string{"x@<2"}, Allow: []string{"x@1.5.0"}}, name: "x", f: Facts{Version: "1.5.1"}, rule: "block"},
		{desc: "allow does not match prereleases", spec: Spec{Block: []string{"x@*"}, Allow: []string{"x@^1.0.0"}}, name: "x", f: Facts{Version: "1.1.0-beta"}, rule: "block"},
		{desc: "allow naming a prerelease matches it", spec: Spec{Block: []string{"x@*"}, Allow: []string{"x@>=1.1.0-beta"}}, name: "x", f: Facts{Version: "1.1.0-beta.2"}},
		{desc: "allow overrides age", spec: Spec{MinReleaseAge: Duration(72 * hour), Allow: []string{"x@1.0.1"}}, name: "x", f: Facts{Version: "1.0.1", Published: now.Add(-hour)}},
		{desc: "allow overrides missing time", spec: Spec{MinReleaseAge: Duration(72 * hour), Allow: []string{"x@1.0.1"}}, name: "x", f: Facts{Version: "1.0.1"}},
		{desc: "allow overrides deprecated", spec: Spec{Deprecated: "hide", Allow: []string{"x@*"}}, name: "x", f: Facts{Version: "1.0.0", Deprecated: true}},
		{desc: "allow overrides install scripts", spec: Spec{InstallScripts: "block", Allow: []string{"x@*"}}, name: "x", f: Facts{Version: "1.0.0", HasInstallScript: true}},
		{desc: "allow overrides licenses", spec: Spec{Licenses: &LicenseSpec{Deny: []string{"GPL-3.0"}}, Allow: []string{"x@*"}}, name: "x", f: Facts{Version: "1.0.0", License: "GPL-3.0"}},
		{desc: "allow does not override exclude", spec: Spec{Exclude: []string{"x"}, Allow: []string{"x@*"}}, name: "x", f: Facts{Version: "1.0.0"}, rule: "exclude"},
		{desc: "allow pattern", spec: Spec{MinReleaseAge: Duration(72 * hour), Allow: []string{"@acme/*@*"}}, name: "@acme/lib", f: Facts{Version: "1.0.0", Published: now}},

		// min_release_age
		{desc: "too young", spec: Spec{MinReleaseAge: Duration(72 * hour)}, name: "foo", f: Facts{Version: "1.2.3", Published: now.Add(-5 * hour)},
			rule: "min-release-age", reason: `foo@1.2.3 was published 5h ago; min_release_age is 3d (until 2026-11-28T05:00:00Z)`},
		{desc: "too young, minutes", spec: Spec{MinReleaseAge: Duration(72 * hour)}, name: "foo", f: Facts{Version: "1.2.3", Published: now.Add(-5*hour - 3*time.Minute - 7*time.Second)},
			rule: "min-release-age", reason: `foo@1.2.3 was published 5h3m ago; min_release_age is 3d (until 2026-11-28T04:56:53Z)`},
		{desc: "old enough", spec: Spec{MinReleaseAge: Duration(72 * hour)}, name: "foo", f: Facts{Version: "1.2.3", Published: now.Add(-72 * hour)}},
		{desc: "a second short", spec: Spec{MinReleaseAge: Duration(72 * hour)}, name: "foo", f: Facts{Version: "1.2.3", Published: now.Add(-72*hour + time.Second)}, rule: "min-release-age"},
		{desc: "missing time fails closed", spec: Spec{MinReleaseAge: Duration(72 * hour)}, name: "foo", f: Facts{Version: "1.2.3"},
			rule: "min-release-age", reason: `foo@1.2.3 has no publish time; min_release_age is 3d (fail closed)`},
		{desc: "future time", spec: Spec{MinReleaseAge: Duration(hour)}, name: "foo", f: Facts{Version: "1.2.3", Published: now.Add(2 * hour)},
			rule: "min-release-age", reason: `foo@1.2.3 has a publish time 2h in the future; min_release_age is 1h (until 2026-11-25T13:00:00Z)`},
		{desc: "exempt scope", spec: Spec{MinReleaseAge: Duration(72 * hour), MinReleaseAgeExempt: []string{"@types/*"}}, name: "@types/node", f: Facts{Version: "1.0.0", Published: now}},
		{desc: "exempt scope shorthand, missing time", spec: Spec{MinReleaseAge: Duration(72 * hour), MinReleaseAgeExempt: []string{"@acme"}}, name: "@acme/x", f: Facts{Version: "1.0.0"}},
		{desc: "exemption is per name", spec: Spec{MinReleaseAge: Duration(72 * hour), MinReleaseAgeExempt: []string{"@types/*"}}, name: "types", f: Facts{Version: "1.0.0", Published: now}, rule: "min-release-age"},
		{desc: "days", spec: Spec{MinReleaseAge: Duration(7 * 24 * hour)}, name: "foo", f: Facts{Version: "1.0.0", Published: now.Add(-6 * 24 * hour)},
			rule: "min-release-age", reason: `foo@1.0.0 was published 144h ago; min_release_age is 7d (until 2026-11-26T10:00:00Z)`},

		// deprecated
		{desc: "deprecated hidden", spec: Spec{Deprecated: "hide"}, name: "x", f: Facts{Version: "1.0.0", Deprecated: true},
			rule: "deprecated", reason: `x@1.0.0 is deprecated and deprecated is "hide"`},
		{desc: "deprecated passes by default", spec: Spec{Deprecated: "pass", Block: []string{"y@*"}}, name: "x", f: Facts{Version: "1.0.0", Deprecated: true}},
		{desc: "not deprecated", spec: Spec{Deprecated: "hide"}, name: "x", f: Facts{Version: "1.0.0"}},

		// install scripts
		{desc: "install script blocked", spec: Spec{InstallScripts: "block"}, name: "x", f: Facts{Version: "1.0.0", HasInstallScript: true},
			rule: "install-scripts", reason: `x@1.0.0 has an install script (preinstall, install or postinstall) and install_scripts is "block"`},
		{desc: "no install script", spec: Spec{InstallScripts: "block"}, name: "x", f: Facts{Version: "1.0.0"}},
		{desc: "install script allow list", spec: Spec{InstallScripts: "block", InstallScriptsAllow: []string{"esbuild", "@swc/*"}}, name: "@swc/core", f: Facts{Version: "1.0.0", HasInstallScript: true}},
		{desc: "install script allow list exact", spec: Spec{InstallScripts: "block", InstallScriptsAllow: []string{"esbuild", "@swc/*"}}, name: "esbuild-wasm", f: Facts{Version: "1.0.0", HasInstallScript: true}, rule: "install-scripts"},
		{desc: "install scripts allowed by default", spec: Spec{InstallScripts: "allow", Deprecated: "hide"}, name: "x", f: Facts{Version: "1.0.0", HasInstallScript: true}},

		// licenses
		{desc: "license allowed", spec: Spec{Licenses: &LicenseSpec{Allow: []string{"MIT", "ISC"}}}, name: "x", f: Facts{Version: "1.0.0", License: "MIT"}},
		{desc: "license case-insensitive", spec: Spec{Licenses: &LicenseSpec{Allow: []string{"MIT"}}}, name: "x", f: Facts{Version: "1.0.0", License: "mit"}},
		{desc: "license not in allow", spec: Spec{Licenses: &LicenseSpec{Allow: []string{"MIT", "ISC"}}}, name: "x", f: Facts{Version: "1.0.0", License: "GPL-3.0-only"},
			rule: "license", reason: `x@1.0.0 has license "GPL-3.0-only", not permitted: "GPL-3.0-only" is not in licenses.allow`},
		{desc: "license denied", spec: Spec{Licenses: &LicenseSpec{Deny: []string{"AGPL-3.0-only"}}}, name: "x", f: Facts{Version: "1.0.0", License: "AGPL-3.0-only"},
			rule: "license", reason: `x@1.0.0 has license "AGPL-3.0-only", not permitted: "AGPL-3.0-only" is denied by licenses.deny entry "AGPL-3.0-only"`},
		{desc: "license OR with one permitted", spec: Spec{Licenses: &LicenseSpec{Deny: []string{"GPL-3.0"}}}, name: "x", f: Facts{Version: "1.0.0", License: "(MIT OR GPL-3.0)"}},
		{desc: "license OR all denied", spec: Spec{Licenses: &LicenseSpec{Deny: []string{"GPL-3.0", "AGPL-3.0"}}}, name: "x", f: Facts{Version: "1.0.0", License: "(GPL-3.0 OR AGPL-3.0)"},
			rule: "license", reason: `x@1.0.0 has license "(GPL-3.0 OR AGPL-3.0)", not permitted: "GPL-3.0" is denied by licenses.deny entry "GPL-3.0"`},
		{desc: "license AND needs all", spec: Spec{Licenses: &LicenseSpec{Deny: []string{"GPL-3.0"}}}, name: "x", f: Facts{Version: "1.0.0", License: "MIT AND GPL-3.0"},
			rule: "license", reason: `x@1.0.0 has license "MIT AND GPL-3.0", not permitted: "GPL-3.0" is denied by licenses.deny entry "GPL-3.0"`},
		{desc: "license AND all allowed", spec: Spec{Licenses: &LicenseSpec{Allow: []string{"MIT", "BSD-3-Clause"}}}, name: "x", f: Facts{Version: "1.0.0", License: "MIT AND BSD-3-Clause"}},
		{desc: "license unknown allowed by default", spec: Spec{Licenses: &LicenseSpec{Allow: []string{"MIT"}}}, name: "x", f: Facts{Version: "1.0.0", License: "SEE LICENSE IN LICENSE.md"}},
		{desc: "license unknown blocked", spec: Spec{Licenses: &LicenseSpec{Unknown: "block"}}, name: "x", f: Facts{Version: "1.0.0", License: "SEE LICENSE IN LICENSE.md"},
			rule: "license", reason: `x@1.0.0 has license "SEE LICENSE IN LICENSE.md", which is not an SPDX expression, and licenses.unknown is "block"`},
		{desc: "license missing blocked", spec: Spec{Licenses: &LicenseSpec{Unknown: "block"}}, name: "x", f: Facts{Version: "1.0.0"},
			rule: "license", reason: `x@1.0.0 has no license and licenses.unknown is "block"`},
		{desc: "license known passes unknown: block", spec: Spec{Licenses: &LicenseSpec{Unknown: "block"}}, name: "x", f: Facts{Version: "1.0.0", License: "ISC"}},
		{desc: "license WITH exception matches the base id", spec: Spec{Licenses: &LicenseSpec{Allow: []string{"GPL-2.0-only"}}}, name: "x", f: Facts{Version: "1.0.0", License: "GPL-2.0-only WITH Classpath-exception-2.0"}},
		{desc: "license WITH entry", spec: Spec{Licenses: &LicenseSpec{Allow: []string{"GPL-2.0-only WITH Classpath-exception-2.0"}}}, name: "x", f: Facts{Version: "1.0.0", License: "GPL-2.0-only"}, rule: "license"},
		{desc: "license untrusted text quoted", spec: Spec{Licenses: &LicenseSpec{Unknown: "block"}}, name: "x", f: Facts{Version: "1.0.0", License: "é\x00"},
			rule: "license", reason: `x@1.0.0 has license "\u00e9\x00", which is not an SPDX expression, and licenses.unknown is "block"`},

		// order of rules
		{desc: "block before age", spec: Spec{Block: []string{"x@*"}, MinReleaseAge: Duration(hour)}, name: "x", f: Facts{Version: "1.0.0", Published: now}, rule: "block"},
		{desc: "age before deprecated", spec: Spec{Deprecated: "hide", MinReleaseAge: Duration(hour)}, name: "x", f: Facts{Version: "1.0.0", Published: now, Deprecated: true}, rule: "min-release-age"},
		{desc: "deprecated before scripts", spec: Spec{Deprecated: "hide", InstallScripts: "block"}, name: "x", f: Facts{Version: "1.0.0", Deprecated: true, HasInstallScript: true}, rule: "deprecated"},
		{desc: "scripts before license", spec: Spec{InstallScripts: "block", Licenses: &LicenseSpec{Unknown: "block"}}, name: "x", f: Facts{Version: "1.0.0", HasInstallScript: true}, rule: "install-scripts"},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			p := mustCompile(t, &c.spec)
			d := p.Version(c.name, c.f, now)
			if c.rule == "" {
				if !d.Allowed || d.Rule != "" || d.Reason != "" {
					t.Fatalf("Version(%q, %q) = %+v, want allowed", c.name, c.f.Version, d)
				}
				return
			}
			if d.Allowed || d.Rule != c.rule {
				t.Fatalf("Version(%q, %q) = %+v, want rule %q", c.name, c.f.Version, d, c.rule)
			}
			if c.reason != "" && d.Reason != c.reason {
				t.Errorf("reason = %q\nwant     %q", d.Reason, c.reason)
			}
			checkASCII(t, d.Reason)
		})
	}
}

func checkASCII(t testing.TB, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			t.Fatalf("reason %q has byte %#x", s, s[i])
		}
	}
}

func TestChain(t *testing.T) {
	connector := mustCompile(t, &Spec{Block: []string{"lodash@<4.17.21"}, MinReleaseAge: Duration(72 * time.Hour)}).WithLabel("connector npmjs")
	feed := mustCompile(t, &Spec{Block: []string{"lodash@<4.17.0"}, Exclude: []string{"left-pad"}}).WithLabel("feed npm")
	p := Chain(nil, connector, feed)

	// Both block 4.16.0: the connector's rule is named.
	d := p.Version("lodash", Facts{Version: "4.16.0", Published: old}, now)
	if d.Allowed || d.Rule != "block" || d.Policy != "connector npmjs" || !strings.Contains(d.Reason, `"lodash@<4.17.21"`) {
		t.Errorf("first blocking policy: %+v", d)
	}
	// Only the feed excludes left-pad.
	d = p.Name("left-pad")
	if d.Allowed || d.Rule != "exclude" || d.Policy != "feed npm" {
		t.Errorf("second policy: %+v", d)
	}
	d = p.Version("left-pad", Facts{Version: "1.0.0", Published: old}, now)
	if d.Allowed || d.Rule != "exclude" {
		t.Errorf("second policy, version: %+v", d)
	}
	// Allowed only when every policy allows.
	if d := p.Version("lodash", Facts{Version: "4.17.21", Published: old}, now); !d.Allowed {
		t.Errorf("allowed by both: %+v", d)
	}
	if d := p.Version("lodash", Facts{Version: "4.17.21", Published: now}, now); d.Allowed || d.Rule != "min-release-age" {
		t.Errorf("age of first: %+v", d)
	}
	// An allow entry overrides only its own policy.
	allowing := mustCompile(t, &Spec{Allow: []string{"lodash@4.16.0"}, Block: []string{"lodash@*"}})
	if d := Chain(allowing).Version("lodash", Facts{Version: "4.16.0", Published: old}, now); !d.Allowed {
		t.Errorf("allow in own policy: %+v", d)
	}
	if d := Chain(allowing, feed).Version("lodash", Facts{Version: "4.16.0", Published: old}, now); d.Allowed || d.Policy != "feed npm" {
		t.Errorf("allow of another policy: %+v", d)
	}

	if !Chain().Empty() || !Chain(nil, nil).Empty() || !Chain(mustCompile(t, &Spec{})).Empty() {
		t.Error("empty chains must be Empty")
	}
	if d := Chain().Version("x", Facts{Version: "garbage"}, now); !d.Allowed {
		t.Errorf("empty chain: %+v", d)
	}
	if p.Empty() {
		t.Error("chain with rules is Empty")
	}
	// Chains of chains flatten.
	if Chain(Chain(connector), feed).Fingerprint() != p.Fingerprint() {
		t.Error("chain of chains changes the fingerprint")
	}
	if Chain(feed, connector).Fingerprint() == p.Fingerprint() {
		t.Error("order must change the fingerprint")
	}
	if Chain(connector).Fingerprint() != connector.Fingerprint() {
		t.Error("chain of one must keep the fingerprint")
	}
	// Labels: an unlabeled policy in a labeled chain gets the label.
	unl := mustCompile(t, &Spec{Exclude: []string{"x"}})
	lc := Chain(connector, unl).WithLabel("outer")
	if d := lc.Name("x"); d.Policy != "outer" {
		t.Errorf("label: %+v", d)
	}
	if d := lc.Version("lodash", Facts{Version: "1.0.0", Published: old}, now); d.Policy != "connector npmjs" {
		t.Errorf("label kept: %+v", d)
	}
	if unl.Name("x").Policy != "" {
		t.Error("WithLabel modified its receiver")
	}
}

func TestNilAndEmptyPolicy(t *testing.T) {
	var p *Policy
	if !p.Empty() || p.Fingerprint() != "" || !p.Name("x").Allowed || !p.Version("x", Facts{}, now).Allowed || !p.NextChange("x", []Facts{{}}, now).IsZero() {
		t.Error("nil policy must allow everything")
	}
	q, err := Compile(nil)
	if err != nil || !q.Empty() {
		t.Errorf("Compile(nil) = %v, %v", q, err)
	}
	empties := []Spec{
		{},
		{Deprecated: "pass", InstallScripts: "allow"},
		{MinReleaseAgeExempt: []string{"@types/*"}},
		{InstallScriptsAllow: []string{"esbuild"}},
		{Allow: []string{"x@*"}},
		{Licenses: &LicenseSpec{Unknown: "allow"}},
		{Include: []string{}},
	}
	for i, s := range empties {
		p := mustCompile(t, &s)
		if !p.Empty() || p.Fingerprint() != "" {
			t.Errorf("spec %d: Empty=%v fingerprint=%q", i, p.Empty(), p.Fingerprint())
		}
	}
	nonEmpties := []Spec{
		{Include: []string{"x"}}, {Include: []string{"!x"}}, {Exclude: []string{"x"}}, {Block: []string{"x@*"}},
		{Deny: []string{"x@1.0.0"}}, {MinReleaseAge: Duration(time.Second)}, {Deprecated: "hide"},
		{InstallScripts: "block"}, {Licenses: &LicenseSpec{Allow: []string{"MIT"}}},
		{Licenses: &LicenseSpec{Deny: []string{"MIT"}}}, {Licenses: &LicenseSpec{Unknown: "block"}},
	}
	seen := map[string]int{}
	for i, s := range nonEmpties {
		p := mustCompile(t, &s)
		if p.Empty() || p.Fingerprint() == "" {
			t.Errorf("spec %d: Empty=%v fingerprint=%q", i, p.Empty(), p.Fingerprint())
		}
		if j, dup := seen[p.Fingerprint()]; dup {
			t.Errorf("specs %d and %d share a fingerprint", j, i)
		}
		seen[p.Fingerprint()] = i
	}
}

func TestFingerprint(t *testing.T) {
	base := Spec{Block: []string{"lodash@<4.17.21"}, MinReleaseAge: Duration(72 * time.Hour)}
	fp := mustCompile(t, &base).Fingerprint()
	if again := mustCompile(t, &base).Fingerprint(); again != fp {
		t.Errorf("not stable: %q vs %q", fp, again)
	}
	if len(fp) != 32 {
		t.Errorf("fingerprint %q", fp)
	}
	variants := []Spec{
		{Block: []string{"lodash@<4.17.22"}, MinReleaseAge: Duration(72 * time.Hour)},
		{Block: []string{"lodash@<4.17.21"}, MinReleaseAge: Duration(71 * time.Hour)},
		{Block: []string{"lodash@<4.17.21"}},
		{Block: []string{"lodash@<4.17.21"}, MinReleaseAge: Duration(72 * time.Hour), MinReleaseAgeExempt: []string{"@types"}},
		{Block: []string{"lodash@<4.17.21"}, MinReleaseAge: Duration(72 * time.Hour), Allow: []string{"lodash@4.17.20"}},
		{Block: []string{"lodash@<4.17.21", "x@*"}, MinReleaseAge: Duration(72 * time.Hour)},
		// Entries cannot bleed into each other.
		{Block: []string{"lodash@<4.17.21"}, Allow: []string{"x@*"}, MinReleaseAge: Duration(72 * time.Hour)},
		{Block: []string{"lodash@<4.17.21", "x@*"}, MinReleaseAge: Duration(72 * time.Hour), Deprecated: "hide"},
	}
	seen := map[string]bool{fp: true}
	for i, v := range variants {
		f := mustCompile(t, &v).Fingerprint()
		if seen[f] {
			t.Errorf("variant %d: fingerprint %q not unique", i, f)
		}
		seen[f] = true
	}
	// Time does not enter the fingerprint; labels neither.
	p := mustCompile(t, &base)
	if p.WithLabel("x").Fingerprint() != fp {
		t.Error("label changed the fingerprint")
	}
}

func TestNextChange(t *testing.T) {
	p := mustCompile(t, &Spec{
		MinReleaseAge:       Duration(72 * time.Hour),
		MinReleaseAgeExempt: []string{"@acme/*"},
		Block:               []string{"foo@3.0.0"},
		Allow:               []string{"foo@2.5.0"},
	})
	versions := []Facts{
		{Version: "1.0.0", Published: old},                                     // old enough
		{Version: "2.0.0", Published: now.Add(-70 * time.Hour)},                // comes of age in 2h
		{Version: "2.1.0", Published: now.Add(-10 * time.Hour)},                // in 62h
		{Version: "2.5.0", Published: now.Add(-71 * time.Hour)},                // allow-listed: never flips
		{Version: "3.0.0", Published: now.Add(-71*time.Hour - 30*time.Minute)}, // blocked for good
		{Version: "4.0.0"}, // no time: hidden for good
	}
	if got, want := p.NextChange("foo", versions, now), now.Add(2*time.Hour); !got.Equal(want) {
		t.Errorf("NextChange = %v, want %v", got, want)
	}
	if got := p.NextChange("@acme/foo", versions, now); !got.IsZero() {
		t.Errorf("exempt: %v", got)
	}
	if got := p.NextChange("foo", versions[:1], now); !got.IsZero() {
		t.Errorf("all mature: %v", got)
	}
	// Exactly at the boundary the version is allowed: the change is in the past.
	if got := p.NextChange("foo", []Facts{{Version: "5.0.0", Published: now.Add(-72 * time.Hour)}}, now); !got.IsZero() {
		t.Errorf("boundary: %v", got)
	}
	// The flip time decided by NextChange is when Version changes its mind.
	at := p.NextChange("foo", versions, now)
	if d := p.Version("foo", versions[1], at.Add(-time.Nanosecond)); d.Allowed {
		t.Error("allowed before NextChange")
	}
	if d := p.Version("foo", versions[1], at); !d.Allowed {
		t.Errorf("still blocked at NextChange: %+v", d)
	}
	// No age rule: no change.
	if got := mustCompile(t, &Spec{Block: []string{"x@*"}}).NextChange("foo", versions, now); !got.IsZero() {
		t.Errorf("no age rule: %v", got)
	}
	// A chain takes the earliest change of its policies.
	q := mustCompile(t, &Spec{MinReleaseAge: Duration(11 * time.Hour)})
	if got, want := Chain(p, q).NextChange("foo", versions, now), now.Add(time.Hour); !got.Equal(want) {
		t.Errorf("chain NextChange = %v, want %v", got, want)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		spec Spec
		want string
	}{
		{Spec{Include: []string{""}}, `include[0]: "": bad name pattern: empty pattern`},
		{Spec{Include: []string{"ok", "@"}}, `include[1]: "@": bad name pattern: empty scope`},
		{Spec{Include: []string{"!"}}, `include[0]: "!": bad name pattern: empty pattern`},
		{Spec{Include: []string{"!!x"}}, `include[0]: "!!x": a double negation is not allowed`},
		{Spec{Include: []string{"a b"}}, `include[0]: "a b": bad name pattern: character ' ' is not allowed in a package name`},
		{Spec{Include: []string{"lоdash"}}, `include[0]: "l\u043edash": bad name pattern: character`},
		{Spec{Exclude: []string{"!x"}}, `exclude[0]: "!x": exclude entries cannot be negated`},
		{Spec{Exclude: []string{"@scope/"}}, `exclude[0]: "@scope/": bad name pattern: empty name after the scope (write "@scope/*" for the whole scope)`},
		{Spec{Exclude: []string{"a/b"}}, `exclude[0]: "a/b": bad name pattern: unexpected '/'`},
		{Spec{Block: []string{"a@1", "b@2", "lodash@^^4"}}, `block[2]: "lodash@^^4": bad semver range: improper constraint: "^^4"`},
		{Spec{Block: []string{"lodash"}}, `block[0]: "lodash": want name@range, for example "lodash@<4.17.21" (or "lodash@*" for every version)`},
		{Spec{Block: []string{"@scope/x"}}, `block[0]: "@scope/x": want name@range`},
		{Spec{Block: []string{"lodash@"}}, `block[0]: "lodash@": empty range after '@' (write lodash@* for every version)`},
		{Spec{Block: []string{"lodash@ "}}, `block[0]: "lodash@ ": empty range`},
		{Spec{Block: []string{"@lodash"}}, `block[0]: "@lodash": want name@range`},
		{Spec{Block: []string{"@@1"}}, `block[0]: "@@1": bad name pattern: empty scope`},
		{Spec{Block: []string{""}}, `block[0]: "": want name@range`},
		{Spec{Block: []string{"x@latest"}}, `block[0]: "x@latest": bad semver range`},
		{Spec{Allow: []string{"x@>=1 <"}}, `allow[0]: "x@>=1 <": bad semver range`},
		{Spec{Allow: []string{"x"}}, `allow[0]: "x": want name@range`},
		{Spec{Deny: []string{"event-stream@^3.3.6"}}, `deny[0]: "event-stream@^3.3.6": "^3.3.6" is not an exact semver version (deny lists exact versions; use block for ranges)`},
		{Spec{Deny: []string{"event-stream"}}, `deny[0]: "event-stream": want name@version`},
		{Spec{Deny: []string{"event-*@3.3.6"}}, `deny[0]: "event-*@3.3.6": deny takes an exact package name`},
		{Spec{Deny: []string{"@evil@1.0.0"}}, `deny[0]: "@evil@1.0.0": deny takes an exact package name`},
		{Spec{Deny: []string{"x@1.0"}}, `deny[0]: "x@1.0": "1.0" is not an exact semver version`},
		{Spec{Deny: []string{"x y@1.0.0"}}, `deny[0]: "x y@1.0.0": bad package name`},
		{Spec{MinReleaseAge: Duration(-time.Hour)}, `min_release_age: must not be negative`},
		{Spec{MinReleaseAgeExempt: []string{"@"}}, `min_release_age_exempt[0]: "@": bad name pattern: empty scope`},
		{Spec{InstallScriptsAllow: []string{""}}, `install_scripts_allow[0]: "": bad name pattern: empty pattern`},
		{Spec{Deprecated: "maybe"}, `deprecated: "maybe": want "pass" or "hide"`},
		{Spec{Deprecated: "Hide"}, `deprecated: "Hide": want "pass" or "hide"`},
		{Spec{InstallScripts: "maybe"}, `install_scripts: "maybe": want "allow", "block" or "no-new"`},
		{Spec{Licenses: &LicenseSpec{Unknown: "deny"}}, `licenses.unknown: "deny": want "allow" or "block"`},
		{Spec{Licenses: &LicenseSpec{Allow: []string{"MIT OR ISC"}}}, `licenses.allow[0]: "MIT OR ISC": want one SPDX license id`},
		{Spec{Licenses: &LicenseSpec{Allow: []string{""}}}, `licenses.allow[0]: "": want an SPDX license id`},
		{Spec{Licenses: &LicenseSpec{Deny: []string{"(MIT)"}}}, `licenses.deny[0]: "(MIT)": want an SPDX license id`},
		{Spec{Licenses: &LicenseSpec{Deny: []string{"GPL WITH"}}}, `licenses.deny[0]: "GPL WITH": want one SPDX license id`},
		{Spec{Licenses: &LicenseSpec{Allow: []string{"MIT"}, Deny: []string{"mit"}}}, `licenses.allow[0]: "MIT": also in licenses.deny`},
	}
	for _, c := range cases {
		p, err := Compile(&c.spec)
		if err == nil {
			t.Errorf("Compile(%+v) = %v, want error %q", c.spec, p, c.want)
			continue
		}
		if p != nil {
			t.Errorf("Compile returned a policy with an error")
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q\nwant it to contain %q", err, c.want)
		}
	}

	// Every bad entry is reported, one per line.
	_, err := Compile(&Spec{Include: []string{"@"}, Block: []string{"x"}, Deprecated: "maybe"})
	if err == nil || len(strings.Split(err.Error(), "\n")) != 3 {
		t.Errorf("want three errors, got %v", err)
	}
}

func TestCompileAccepts(t *testing.T) {
	s := Spec{
		Include:             []string{"*", "@types", "!left-pad", "lodash*", "@*/core"},
		Exclude:             []string{"event-stream", "@evil/*"},
		Block:               []string{"lodash@<4.17.21", "@scope/x@>=2.0.0 <2.1.0", "x@*", "y@1.x || ^3", "z@1.2.3 - 1.4.0", "w@>= 1.0, < 2"},
		Deny:                []string{"event-stream@3.3.6", "@ctrl/tinycolor@4.1.1", "x@1.0.0-rc.1+b"},
		Allow:               []string{"lodash@4.17.20", "@acme/*@*"},
		MinReleaseAge:       Duration(72 * time.Hour),
		MinReleaseAgeExempt: []string{"@types/*", "@acme"},
		Deprecated:          "hide",
		InstallScripts:      "block",
		InstallScriptsAllow: []string{"esbuild", "@swc/*"},
		Licenses:            &LicenseSpec{Allow: []string{"MIT", "ISC", "GPL-2.0-only WITH Classpath-exception-2.0", "LicenseRef-acme"}, Deny: []string{"AGPL-3.0-only"}, Unknown: "block"},
	}
	mustCompile(t, &s)
}
