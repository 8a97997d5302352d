package filter

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rule ids, as Decision.Rule reports them. They are stable: metrics labels
// and messages use them.
const (
	RuleExclude        = "exclude"
	RuleInclude        = "include"
	RuleDeny           = "deny"
	RuleInvalidVersion = "invalid-version"
	RuleBlock          = "block"
	RuleMinReleaseAge  = "min-release-age"
	RuleDeprecated     = "deprecated"
	RuleInstallScripts = "install-scripts"
	RuleLicense        = "license"
	// RuleNewInstallScripts (install_scripts: no-new) and
	// RuleProvenanceDowngrade (provenance: no-downgrade) decide on what the
	// package's other versions show: see WithHistory.
	RuleNewInstallScripts   = "new-install-scripts"
	RuleProvenanceDowngrade = "provenance-downgrade"
)

const (
	ruleNone = iota
	ruleExclude
	ruleInclude
	ruleDeny
	ruleInvalid
	ruleBlock
	ruleAge
	ruleDeprecated
	ruleScripts
	ruleLicense
	ruleNewScripts
	ruleProvenance
)

var ruleIDs = [...]string{
	ruleNone:       "",
	ruleExclude:    RuleExclude,
	ruleInclude:    RuleInclude,
	ruleDeny:       RuleDeny,
	ruleInvalid:    RuleInvalidVersion,
	ruleBlock:      RuleBlock,
	ruleAge:        RuleMinReleaseAge,
	ruleDeprecated: RuleDeprecated,
	ruleScripts:    RuleInstallScripts,
	ruleLicense:    RuleLicense,
	ruleNewScripts: RuleNewInstallScripts,
	ruleProvenance: RuleProvenanceDowngrade,
}

// Facts are what a version decision looks at, taken from the packument.
type Facts struct {
	// Version is the key in the packument's "versions", as is. A key that is
	// not strict SemVer 2.0.0 cannot be checked against a range: see
	// RuleInvalidVersion.
	Version string
	// Published is time[Version], zero when the packument has none.
	Published time.Time
	// License is package.json "license" ("" when absent).
	License string
	// Deprecated is true when the version has a "deprecated" message.
	Deprecated bool
	// HasInstallScript is true when scripts.preinstall, install or
	// postinstall is present, or the version has a binding.gyp that npm
	// builds with node-gyp rebuild ("gypfile": true).
	HasInstallScript bool
	// Provenance is true when the version was published with a provenance
	// attestation (dist.attestations) or by a trusted publisher
	// (_npmUser.trustedPublisher).
	Provenance bool

	// The history fields are what the package's other versions show; they
	// are set by WithHistory.

	// EarlierProvenance is the highest release of the same major line that
	// precedes Version and has Provenance, "" if none.
	EarlierProvenance string
	// PreviousRelease is the highest release of the package that precedes
	// Version, "" if none. PreviousHadScripts is true when it has install
	// scripts that were accepted: it is the package's first release, or
	// the release before it had accepted ones too. Scripts that were new
	// in it do not count (NewScriptsSince then names the release they came
	// in), or a second release would carry in what the first was refused
	// for.
	PreviousRelease    string
	PreviousHadScripts bool
	NewScriptsSince    string
}

// Decision is the outcome of Name or Version.
type Decision struct {
	Allowed bool
	// Rule is the id of the rule that blocked ("" when allowed).
	Rule string
	// Reason is a sentence naming the package, the version and the rule
	// entry. It is printable ASCII: untrusted names, versions and licenses
	// are quoted with Go escapes when they hold anything else, so a Reason
	// can go into a response header.
	Reason string
	// Policy is the label (see WithLabel) of the policy that blocked, if it
	// has one.
	Policy string
}

var allowed = Decision{Allowed: true}

// Policy is a compiled rule set, or a chain of them. The zero value and the
// nil pointer allow everything. A Policy is immutable and safe for
// concurrent use.
type Policy struct {
	leaves []*leaf
	fp     string
}

type rangeRule struct {
	name glob
	r    *vrange
	text string
}

type denyRule struct {
	name string
	v    ver
	text string
}

// leaf is one compiled Spec.
type leaf struct {
	label          string
	include        globList // positive include entries
	exclude        globList // exclude entries, then the "!x" include entries
	negated        []bool   // exclude[i] came from include as "!x"
	block          []rangeRule
	allow          []rangeRule
	deny           []denyRule
	age            time.Duration
	ageExempt      globList
	hideDeprecated bool
	blockScripts   bool
	newScripts     bool // install_scripts: no-new
	scriptsAllow   globList
	provenance     bool // provenance: no-downgrade
	provExempt     globList
	lic            *licRules
	fp             string
}

func (l *leaf) empty() bool {
	return len(l.include.gs) == 0 && len(l.exclude.gs) == 0 && len(l.block) == 0 &&
		len(l.deny) == 0 && l.age == 0 && !l.hideDeprecated && !l.blockScripts && l.lic == nil &&
		!l.newScripts && !l.provenance
}

// Compile checks a Spec and compiles it. Every bad entry is reported, each
// on its own line, naming its key and index and quoting it. A nil Spec, or
// one without rules, compiles to a policy that allows everything.
func Compile(s *Spec) (*Policy, error) {
	if s == nil {
		return &Policy{}, nil
	}
	var errs []error
	bad := func(key string, i int, entry string, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if i < 0 {
			errs = append(errs, fmt.Errorf("%s: %s", key, msg))
			return
		}
		errs = append(errs, fmt.Errorf("%s[%d]: %s: %s", key, i, strconv.QuoteToASCII(entry), msg))
	}
	l := &leaf{}

	var negated globList
	for i, e := range s.Include {
		pat, neg := strings.CutPrefix(e, "!")
		if neg && strings.HasPrefix(pat, "!") {
			bad("include", i, e, "a double negation is not allowed")
			continue
		}
		g, err := compileGlob(pat)
		if err != nil {
			bad("include", i, e, "bad name pattern: %v", err)
			continue
		}
		if neg {
			negated.add(g, e)
		} else {
			l.include.add(g, e)
		}
	}
	for i, e := range s.Exclude {
		if strings.HasPrefix(e, "!") {
			bad("exclude", i, e, "exclude entries cannot be negated (to make an exception, narrow the pattern or use include)")
			continue
		}
		g, err := compileGlob(e)
		if err != nil {
			bad("exclude", i, e, "bad name pattern: %v", err)
			continue
		}
		l.exclude.add(g, e)
		l.negated = append(l.negated, false)
	}
	for i := range negated.gs {
		l.exclude.add(negated.gs[i], negated.text[i])
		l.negated = append(l.negated, true)
	}

	rangeRules := func(key string, entries []string) []rangeRule {
		var out []rangeRule
		for i, e := range entries {
			name, rng, ok := cutNameAt(e)
			if !ok {
				bad(key, i, e, "want name@range, for example \"lodash@<4.17.21\" (or \"lodash@*\" for every version)")
				continue
			}
			g, err := compileGlob(name)
			if err != nil {
				bad(key, i, e, "bad name pattern: %v", err)
				continue
			}
			if strings.TrimSpace(rng) == "" {
				bad(key, i, e, "empty range after '@' (write %s@* for every version)", name)
				continue
			}
			r, err := compileRange(rng)
			if err != nil {
				bad(key, i, e, "bad semver range: %v", err)
				continue
			}
			out = append(out, rangeRule{name: g, r: r, text: e})
		}
		return out
	}
	l.block = rangeRules("block", s.Block)
	l.allow = rangeRules("allow", s.Allow)

	for i, e := range s.Deny {
		name, v, ok := cutNameAt(e)
		if !ok {
			bad("deny", i, e, "want name@version, for example \"event-stream@3.3.6\"")
			continue
		}
		g, err := compileGlob(name)
		if err != nil {
			bad("deny", i, e, "bad package name: %v", err)
			continue
		}
		if g.kind != globExact {
			bad("deny", i, e, "deny takes an exact package name, not a pattern (use block or exclude)")
			continue
		}
		pv, ok := parseVersion(v)
		if !ok {
			bad("deny", i, e, "%s is not an exact semver version (deny lists exact versions; use block for ranges)", strconv.QuoteToASCII(v))
			continue
		}
		l.deny = append(l.deny, denyRule{name: name, v: pv, text: e})
	}

	if s.MinReleaseAge < 0 {
		bad("min_release_age", -1, "", "must not be negative")
	}
	l.age = time.Duration(s.MinReleaseAge)
	globs := func(key string, entries []string) globList {
		var out globList
		for i, e := range entries {
			g, err := compileGlob(e)
			if err != nil {
				bad(key, i, e, "bad name pattern: %v", err)
				continue
			}
			out.add(g, e)
		}
		return out
	}
	l.ageExempt = globs("min_release_age_exempt", s.MinReleaseAgeExempt)
	l.scriptsAllow = globs("install_scripts_allow", s.InstallScriptsAllow)

	switch s.Deprecated {
	case "", "pass":
	case "hide":
		l.hideDeprecated = true
	default:
		bad("deprecated", -1, "", "%s: want \"pass\" or \"hide\"", strconv.QuoteToASCII(s.Deprecated))
	}
	switch s.InstallScripts {
	case "", "allow":
	case "block":
		l.blockScripts = true
	case "no-new":
		l.newScripts = true
	default:
		bad("install_scripts", -1, "", "%s: want \"allow\", \"block\" or \"no-new\"", strconv.QuoteToASCII(s.InstallScripts))
	}
	l.compileTrust(s, bad, globs)

	if ls := s.Licenses; ls != nil {
		r := &licRules{}
		terms := func(key string, entries []string) ([]licTerm, []string) {
			var ts []licTerm
			var text []string
			for i, e := range entries {
				t, err := parseLicenseTerm(e)
				if err != nil {
					bad(key, i, e, "%v", err)
					continue
				}
				ts = append(ts, t)
				text = append(text, e)
			}
			return ts, text
		}
		r.allow, r.allowText = terms("licenses.allow", ls.Allow)
		r.deny, r.denyText = terms("licenses.deny", ls.Deny)
		for i, a := range r.allow {
			for _, d := range r.deny {
				if strings.EqualFold(a.id, d.id) && strings.EqualFold(a.exc, d.exc) {
					bad("licenses.allow", i, r.allowText[i], "also in licenses.deny")
				}
			}
		}
		switch ls.Unknown {
		case "", "allow":
		case "block":
			r.unknownBlock = true
		default:
			bad("licenses.unknown", -1, "", "%s: want \"allow\" or \"block\"", strconv.QuoteToASCII(ls.Unknown))
		}
		if len(r.allow) > 0 || len(r.deny) > 0 || r.unknownBlock {
			l.lic = r
		}
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if l.empty() {
		return &Policy{}, nil
	}
	l.fp = l.fingerprint()
	return &Policy{leaves: []*leaf{l}, fp: l.fp}, nil
}

// cutNameAt splits "name@rest" and "@scope/name@rest".
func cutNameAt(e string) (name, rest string, ok bool) {
	from := 0
	if strings.HasPrefix(e, "@") {
		from = 1
	}
	i := strings.IndexByte(e[from:], '@')
	if i < 0 {
		return "", "", false
	}
	i += from
	return e[:i], e[i+1:], true
}

// fingerprintVersion changes when the meaning of the rules changes, so that
// documents filtered by an older build are not reused.
const fingerprintVersion = "npmgate-filter-1"

func (l *leaf) fingerprint() string {
	var b strings.Builder
	b.WriteString(fingerprintVersion)
	list := func(key string, entries []string) {
		b.WriteString("\n" + key + " " + strconv.Itoa(len(entries)))
		for _, e := range entries {
			b.WriteString(" " + strconv.Quote(e))
		}
	}
	list("include", l.include.text)
	list("exclude", l.exclude.text)
	texts := func(rs []rangeRule) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.text)
		}
		return out
	}
	list("block", texts(l.block))
	list("allow", texts(l.allow))
	var deny []string
	for _, d := range l.deny {
		deny = append(deny, d.text)
	}
	list("deny", deny)
	b.WriteString("\nage " + strconv.FormatInt(int64(l.age), 10))
	list("age_exempt", l.ageExempt.text)
	b.WriteString("\ndeprecated " + strconv.FormatBool(l.hideDeprecated))
	b.WriteString("\nscripts " + strconv.FormatBool(l.blockScripts))
	list("scripts_allow", l.scriptsAllow.text)
	// Written only when set, so the fingerprints of rule sets without them
	// (and the cached documents filtered by those) stay as they were.
	if l.newScripts {
		b.WriteString("\nscripts no-new")
	}
	if l.provenance || len(l.provExempt.text) > 0 {
		b.WriteString("\nprovenance " + strconv.FormatBool(l.provenance))
		list("provenance_exempt", l.provExempt.text)
	}
	if l.lic != nil {
		list("licenses.allow", l.lic.allowText)
		list("licenses.deny", l.lic.denyText)
		b.WriteString("\nlicenses.unknown " + strconv.FormatBool(l.lic.unknownBlock))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:16])
}

// Chain combines policies, typically a connector's and then a feed's: a name
// or version is allowed only if every policy allows it, and the Decision is
// the first blocking policy's. Nil and empty policies are skipped; Chain()
// allows everything. Allow entries of one policy override only that
// policy's rules.
func Chain(ps ...*Policy) *Policy {
	out := &Policy{}
	for _, p := range ps {
		if p == nil {
			continue
		}
		out.leaves = append(out.leaves, p.leaves...)
	}
	out.fp = fingerprintOf(out.leaves)
	return out
}

func fingerprintOf(leaves []*leaf) string {
	switch len(leaves) {
	case 0:
		return ""
	case 1:
		return leaves[0].fp
	}
	h := sha256.New()
	h.Write([]byte(fingerprintVersion + " chain"))
	for _, l := range leaves {
		h.Write([]byte(" " + l.fp))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// WithLabel returns a copy of p whose decisions carry label in
// Decision.Policy ("connector npmjs", "feed npm"). In a chain, only the
// policies without a label get this one.
func (p *Policy) WithLabel(label string) *Policy {
	if p == nil {
		return &Policy{}
	}
	out := &Policy{fp: p.fp}
	for _, l := range p.leaves {
		if l.label == "" {
			c := *l
			c.label = label
			l = &c
		}
		out.leaves = append(out.leaves, l)
	}
	return out
}

// Empty reports whether the policy allows everything, so callers can skip
// the work of filtering.
func (p *Policy) Empty() bool { return p == nil || len(p.leaves) == 0 }

// Fingerprint is a stable string that changes whenever the compiled rules
// change; it is "" for an empty policy. Cache keys of filtered documents
// include it. Time-dependent rules are part of the rules, not of the
// fingerprint: see NextChange. Labels are not part of it.
func (p *Policy) Fingerprint() string {
	if p == nil {
		return ""
	}
	return p.fp
}

// Name decides on a package name alone: exclude entries (and "!name"
// include entries) first, then include entries. Call it before any upstream
// request.
func (p *Policy) Name(name string) Decision {
	if p == nil {
		return allowed
	}
	for _, l := range p.leaves {
		if o := l.name(name); o.rule != ruleNone {
			return l.decision(o, name, nil, time.Time{})
		}
	}
	return allowed
}

// Version decides on one version of a package. It applies the name rules
// too, so a caller that only checks versions (a tarball request) is safe.
// Within a policy, the rules apply in this order, the first that blocks
// giving the Decision: exclude, include, deny, allow (which allows the
// version and ends the evaluation), invalid-version, block, min-release-age,
// deprecated, install-scripts, new-install-scripts, provenance-downgrade,
// license (new-install-scripts and provenance-downgrade read the history
// fields: see WithHistory). On the allow path it does not allocate.
func (p *Policy) Version(name string, v Facts, now time.Time) Decision {
	if p == nil {
		return allowed
	}
	for _, l := range p.leaves {
		if o := l.version(name, &v, now); o.rule != ruleNone {
			return l.decision(o, name, &v, now)
		}
	}
	return allowed
}

// NextChange returns the earliest time after now at which the decision on
// one of versions would change because of min_release_age (a version comes
// of age), so that a cached filtered document can expire then; zero if
// there is none.
func (p *Policy) NextChange(name string, versions []Facts, now time.Time) time.Time {
	var next time.Time
	if p == nil {
		return next
	}
	for _, l := range p.leaves {
		if l.age <= 0 || l.ageExempt.match(name) >= 0 {
			continue
		}
		for i := range versions {
			f := &versions[i]
			if f.Published.IsZero() {
				continue // hidden for good
			}
			t := f.Published.Add(l.age)
			if !t.After(now) || (!next.IsZero() && !t.Before(next)) {
				continue
			}
			if o := l.version(name, f, now); o.rule == ruleAge {
				next = t
			}
		}
	}
	return next
}

// outcome is a decision without its message.
type outcome struct {
	rule  uint8
	entry int  // index of the entry in the list the rule names
	deny  bool // ruleInvalid: the entry is a deny entry (else a block entry)
	lic   licResult
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

	// The deny list first: nothing overrides a known-malicious version, not
	// even an allow entry. Allow entries are written as ranges and patterns
	// ("@acme/*@*", "esbuild@^0.25") to exempt versions from policy rules
	// (cooldown, scripts, licenses, a broad block); a deny entry records one
	// exact version known to be malware (an advisory, an OSV id). A worm that
	// republishes every package its stolen token can reach (Shai-Hulud) would
	// otherwise walk through the owner's own broad allow entry. Serving a
	// denied version takes removing its deny entry: one explicit act.
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
		if compareVer(&v, &d.v) == 0 {
			return outcome{rule: ruleDeny, entry: i}
		}
	}
	if invalid.rule != ruleNone {
		return invalid
	}

	if valid {
		for i := range l.allow {
			a := &l.allow[i]
			if a.name.match(name) && a.r.match(&v, false) {
				return outcome{}
			}
		}
	}

	for i := range l.block {
		b := &l.block[i]
		if !b.name.match(name) {
			continue
		}
		if !valid {
			return outcome{rule: ruleInvalid, entry: i}
		}
		if b.r.match(&v, true) {
			return outcome{rule: ruleBlock, entry: i}
		}
		if v.Pre != "" {
			rel := ver{Major: v.Major, Minor: v.Minor, Patch: v.Patch}
			if b.r.match(&rel, true) {
				return outcome{rule: ruleBlock, entry: i}
			}
		}
	}

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
