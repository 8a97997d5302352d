package filter

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/npmgate/npmgate/osv"
)

// outcome is a decision without its message.
type outcome struct {
	rule  uint8
	entry int  // index of the entry in the list the rule names
	deny  bool // ruleInvalid: the entry is a deny entry (else a block entry)
	lic   licResult
	adv   *osv.Advisory // ruleMalicious, ruleVulnerable
}

func (l *leaf) name(name string) outcome {
	if i := l.exclude.match(name); i >= 0 {
		return outcome{rule: ruleExclude, entry: i}
	}
	if len(l.include.gs) > 0 && l.include.match(name) < 0 {
		return outcome{rule: ruleInclude}
	}
	return outcome{}
}

func (l *leaf) version(name string, f *Facts, now time.Time) outcome {
	if o := l.name(name); o.rule != ruleNone {
		return o
	}
	var v ver
	valid := false
	if len(l.deny) > 0 || len(l.block) > 0 || len(l.allow) > 0 {
		v, valid = parseVersion(f.Version)
	}
	if o := l.denyEntry(name, &v, valid); o.rule != ruleNone {
		return o
	}
	// A malicious-package record is a deny entry kept by the database:
	// an allow entry does not override it either.
	if a := l.advisory(l.malicious, name, f); a != nil {
		return outcome{rule: ruleMalicious, adv: a}
	}
	if valid && l.allowed(name, &v) {
		return outcome{}
	}
	if o := l.blockEntry(name, &v, valid); o.rule != ruleNone {
		return o
	}
	if a := l.advisory(l.vulnerable, name, f); a != nil {
		return outcome{rule: ruleVulnerable, adv: a}
	}
	return l.versionRules(name, f, now)
}

// denyEntry is the outcome of the deny list, which comes first: nothing
// overrides a known-malicious version, not even an allow entry. Allow
// entries are written as ranges and patterns ("@acme/*@*",
// "esbuild@^0.25") to exempt versions from policy rules (cooldown,
// scripts, licenses, a broad block); a deny entry records one exact
// version known to be malware (an advisory, an OSV id). A worm that
// republishes every package its stolen token can reach (Shai-Hulud) would
// otherwise walk through the owner's own broad allow entry. Serving a
// denied version takes removing its deny entry: one explicit act.
func (l *leaf) denyEntry(name string, v *ver, valid bool) outcome {
	invalid := outcome{}
	for i := range l.deny {
		d := &l.deny[i]
		if d.name != name {
			continue
		}
		if !valid {
			if invalid.rule == ruleNone {
				invalid = outcome{rule: ruleInvalid, entry: i, deny: true}
			}
			continue
		}
		if compareVer(v, &d.v) == 0 {
			return outcome{rule: ruleDeny, entry: i}
		}
	}
	return invalid
}

// allowed reports whether an allow entry exempts the version from the
// rules after it.
func (l *leaf) allowed(name string, v *ver) bool {
	for i := range l.allow {
		a := &l.allow[i]
		if a.name.match(name) && a.r.match(v, false) {
			return true
		}
	}
	return false
}

// versionRules are the rules on a version's facts: cooldown, deprecation,
// install scripts, the trust rules, licences.
func (l *leaf) versionRules(name string, f *Facts, now time.Time) outcome {
	if l.age > 0 && l.ageExempt.match(name) < 0 {
		if f.Published.IsZero() || now.Sub(f.Published) < l.age {
			return outcome{rule: ruleAge}
		}
	}
	if l.hideDeprecated && f.Deprecated {
		return outcome{rule: ruleDeprecated}
	}
	if l.blockScripts && f.HasInstallScript && l.scriptsAllow.match(name) < 0 {
		return outcome{rule: ruleScripts}
	}
	if r := l.trust(name, f); r != ruleNone {
		return outcome{rule: r}
	}
	if l.lic != nil {
		r := l.lic.eval(f.License)
		if r.why == licUnknown && !l.lic.unknownBlock {
			r.why = licOK
		}
		if r.why != licOK {
			return outcome{rule: ruleLicense, lic: r}
		}
	}
	return outcome{}
}

// blockEntry is the outcome of the block entries on a version: the first
// entry naming the package that matches it (or its release, for a
// prerelease), or invalid-version when it cannot be checked.
func (l *leaf) blockEntry(name string, v *ver, valid bool) outcome {
	for i := range l.block {
		b := &l.block[i]
		if !b.name.match(name) {
			continue
		}
		if !valid {
			return outcome{rule: ruleInvalid, entry: i}
		}
		if b.r.match(v, true) {
			return outcome{rule: ruleBlock, entry: i}
		}
		if v.Pre != "" {
			rel := ver{Major: v.Major, Minor: v.Minor, Patch: v.Patch}
			if b.r.match(&rel, true) {
				return outcome{rule: ruleBlock, entry: i}
			}
		}
	}
	return outcome{}
}

// decision writes the message for a blocking outcome. f is nil for Name.
func (l *leaf) decision(o outcome, name string, f *Facts, now time.Time) Decision {
	d := Decision{Rule: ruleIDs[o.rule], Policy: l.label}
	pkg := show(name)
	if f != nil {
		pkg += "@" + show(f.Version)
	}
	q := strconv.QuoteToASCII
	switch o.rule {
	case ruleExclude:
		if l.negated[o.entry] {
			d.Reason = fmt.Sprintf("%s is excluded by %s", show(name), q(l.exclude.text[o.entry]))
		} else {
			d.Reason = fmt.Sprintf("%s is excluded by exclude entry %s", show(name), q(l.exclude.text[o.entry]))
		}
	case ruleInclude:
		const most = 5
		var list []string
		for i, t := range l.include.text {
			if i == most {
				list = append(list, fmt.Sprintf("and %d more", len(l.include.text)-most))
				break
			}
			list = append(list, q(t))
		}
		d.Reason = fmt.Sprintf("%s is not matched by any include entry (%s)", show(name), strings.Join(list, ", "))
	case ruleDeny:
		d.Reason = fmt.Sprintf("%s is a known-malicious version (deny entry %s)", pkg, q(l.deny[o.entry].text))
	case ruleInvalid:
		kind, text := "block", ""
		if o.deny {
			kind, text = "deny", l.deny[o.entry].text
		} else {
			text = l.block[o.entry].text
		}
		d.Reason = fmt.Sprintf("%s is not a valid semver version, so %s entry %s cannot be checked (fail closed)", pkg, kind, q(text))
	case ruleBlock:
		d.Reason = fmt.Sprintf("%s is blocked by block entry %s", pkg, q(l.block[o.entry].text))
	case ruleAge:
		if f.Published.IsZero() {
			d.Reason = fmt.Sprintf("%s has no publish time; min_release_age is %s (fail closed)", pkg, Duration(l.age))
			break
		}
		until := f.Published.Add(l.age).UTC().Format(time.RFC3339)
		if age := now.Sub(f.Published); age >= 0 {
			d.Reason = fmt.Sprintf("%s was published %s ago; min_release_age is %s (until %s)", pkg, fmtDur(age), Duration(l.age), until)
		} else {
			d.Reason = fmt.Sprintf("%s has a publish time %s in the future; min_release_age is %s (until %s)", pkg, fmtDur(-age), Duration(l.age), until)
		}
	case ruleDeprecated:
		d.Reason = fmt.Sprintf("%s is deprecated and deprecated is \"hide\"", pkg)
	case ruleScripts:
		d.Reason = fmt.Sprintf("%s has an install script (preinstall, install or postinstall) and install_scripts is \"block\"", pkg)
	case ruleNewScripts, ruleProvenance:
		d.Reason = trustReason(o.rule, pkg, f)
	case ruleMalicious, ruleVulnerable:
		d.Reason = l.advisoryReason(o.rule, pkg, o.adv)
	case ruleLicense:
		lic := f.License
		switch o.lic.why {
		case licUnknown:
			if strings.TrimSpace(lic) == "" {
				d.Reason = fmt.Sprintf("%s has no license and licenses.unknown is \"block\"", pkg)
			} else {
				d.Reason = fmt.Sprintf("%s has license %s, which is not an SPDX expression, and licenses.unknown is \"block\"", pkg, q(lic))
			}
		case licDenied:
			d.Reason = fmt.Sprintf("%s has license %s, not permitted: %s is denied by licenses.deny entry %s",
				pkg, q(lic), q(lic[o.lic.from:o.lic.to]), q(l.lic.denyText[o.lic.entry]))
		case licNotAllowed:
			d.Reason = fmt.Sprintf("%s has license %s, not permitted: %s is not in licenses.allow", pkg, q(lic), q(lic[o.lic.from:o.lic.to]))
		}
	}
	return d
}

// show returns s when it is plain printable ASCII, else s quoted with Go
// escapes, so that an untrusted name or version cannot put control
// characters or look-alike letters into a message.
func show(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// fmtDur writes a duration without zero units ("72h", "5h3m", "42s"),
// to the minute from one hour on.
func fmtDur(d time.Duration) string {
	if d >= time.Hour {
		d = d.Truncate(time.Minute)
	} else if d >= time.Second {
		d = d.Truncate(time.Second)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
