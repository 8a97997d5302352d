package filter

import (
	"strings"
	"testing"
	"time"
)

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// FuzzCompile builds a Spec from fuzzed strings (each list is one string cut
// at newlines): Compile must never panic, and neither must any decision of a
// policy it accepts. Decisions must be consistent: a Decision is allowed
// exactly when it has no rule and no reason, reasons are printable ASCII,
// Version refuses what Name refuses (with the same decision), the deny list always wins, chaining a
// policy with itself changes nothing, and fingerprints are stable.
func FuzzCompile(f *testing.F) {
	f.Add("@types/*\nlodash*\n!left-pad", "event-stream\n@evil", "lodash@<4.17.21\n@scope/x@>=2.0.0 <2.1.0", "event-stream@3.3.6",
		"lodash@4.17.20", int64(72*time.Hour), "@types/*", "hide", "block", "esbuild\n@swc/*", "MIT\nISC", "GPL-3.0-only", "block",
		"lodash", "4.17.20", "(MIT OR GPL-3.0-only)", int64(-5*time.Hour), true, true)
	f.Add("", "", "x@*", "", "", int64(0), "", "", "", "", "", "", "", "x", "1.0.0-beta+b", "", int64(0), false, false)
	f.Add("*", "", "x@1.x || ^3", "x@1.0.0", "x@*", int64(time.Hour), "@a", "pass", "allow", "", "", "", "allow",
		"x", "1.0.0+z", "SEE LICENSE IN x", int64(0), false, true)
	f.Add("@", "!x", "x", "x@^1", "x@", int64(-1), "", "maybe", "maybe", "", "MIT OR ISC", "", "deny",
		"@", "garbage", "MIT AND", int64(0), true, false)
	f.Fuzz(func(t *testing.T, include, exclude, block, deny, allow string, age int64, exempt, deprecated, scripts, scriptsAllow,
		licAllow, licDeny, unknown, name, version, license string, published int64, isDeprecated, hasScript bool) {
		s := &Spec{
			Include: lines(include), Exclude: lines(exclude), Block: lines(block), Deny: lines(deny), Allow: lines(allow),
			MinReleaseAge: Duration(age), MinReleaseAgeExempt: lines(exempt), Deprecated: deprecated,
			InstallScripts: scripts, InstallScriptsAllow: lines(scriptsAllow),
		}
		if licAllow != "" || licDeny != "" || unknown != "" {
			s.Licenses = &LicenseSpec{Allow: lines(licAllow), Deny: lines(licDeny), Unknown: unknown}
		}
		p, err := Compile(s)
		if err != nil {
			if p != nil {
				t.Fatal("policy with an error")
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			return
		}
		if p2, err := Compile(s); err != nil || p2.Fingerprint() != p.Fingerprint() {
			t.Fatalf("fingerprint not stable: %v", err)
		}
		if p.Empty() != (p.Fingerprint() == "") {
			t.Fatalf("Empty=%v with fingerprint %q", p.Empty(), p.Fingerprint())
		}

		facts := Facts{Version: version, License: license, Deprecated: isDeprecated, HasInstallScript: hasScript}
		if published != 0 {
			facts.Published = now.Add(time.Duration(published))
		}
		check := func(d Decision) {
			if d.Allowed != (d.Rule == "") || d.Allowed != (d.Reason == "") {
				t.Fatalf("inconsistent decision %+v", d)
			}
			checkASCII(t, d.Reason)
		}
		nd := p.Name(name)
		check(nd)
		vd := p.Version(name, facts, now)
		check(vd)
		if !nd.Allowed && vd != nd {
			t.Fatalf("Name %+v but Version %+v", nd, vd)
		}
		if p.Empty() && (!nd.Allowed || !vd.Allowed) {
			t.Fatalf("empty policy blocked: %+v %+v", nd, vd)
		}
		for _, e := range s.Deny {
			dn, dv, _ := cutNameAt(e)
			a, _ := parseVersion(dv)
			b, ok := parseVersion(version)
			if nd.Allowed && dn == name && ok && compareVer(&a, &b) == 0 && (vd.Allowed || vd.Rule != RuleDeny) {
				t.Fatalf("deny entry %q did not block: %+v", e, vd)
			}
		}
		if d2 := Chain(p, p).Version(name, facts, now); d2 != vd {
			t.Fatalf("Chain(p, p) = %+v, p = %+v", d2, vd)
		}
		next := p.NextChange(name, []Facts{facts, {Version: "1.0.0", Published: now.Add(-time.Minute)}}, now)
		if !next.IsZero() && !next.After(now) {
			t.Fatalf("NextChange %v not after now", next)
		}
		if tag, ok := RetargetTag(version, []string{version, "1.0.0", license, name}); !ok || tag != version {
			t.Fatalf("RetargetTag of an allowed target: %q %v", tag, ok)
		}
		if tag, ok := RetargetTag(version, []string{license, name, "1.0.0"}); ok {
			tv, okT := parseVersion(version)
			gv, okG := parseVersion(tag)
			if !okT || !okG || compareVer(&gv, &tv) > 0 {
				t.Fatalf("RetargetTag(%q) = %q", version, tag)
			}
		}
	})
}
