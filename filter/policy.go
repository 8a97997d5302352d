package filter

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/npmgate/npmgate/osv"
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
	// RuleMalicious (malicious: block) and RuleVulnerable (vulnerable:
	// {min_severity}) decide on an OSV database: see WithAdvisories.
	RuleMalicious  = "malicious"
	RuleVulnerable = "vulnerable"
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
	ruleMalicious
	ruleVulnerable
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
	ruleMalicious:  RuleMalicious,
	ruleVulnerable: RuleVulnerable,
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
	malicious      *osv.Rule      // malicious: block
	vulnerable     *osv.Rule      // vulnerable: {min_severity}
	db             osv.Advisories // what the two decide with (WithAdvisories)
	fp             string
}

func (l *leaf) empty() bool {
	return len(l.include.gs) == 0 && len(l.exclude.gs) == 0 && len(l.block) == 0 &&
		len(l.deny) == 0 && l.age == 0 && !l.hideDeprecated && !l.blockScripts && l.lic == nil &&
		!l.newScripts && !l.provenance && l.malicious == nil && l.vulnerable == nil
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
	l.advisoriesFingerprint(&b)
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
// giving the Decision: exclude, include, deny, malicious, allow (which
// allows the version and ends the evaluation), invalid-version, block,
// vulnerable, min-release-age,
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
