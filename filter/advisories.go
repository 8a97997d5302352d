package filter

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/npmgate/npmgate/osv"
)

// The advisory rules (malicious: block, vulnerable: {min_severity}) decide
// on a version by what an OSV database says of it. The database is handed
// in with WithAdvisories, not at Compile: it is refreshed while the rules
// stay, and each refresh gives the caller a new, immutable one to decide
// with (and to key its documents by).

// VulnerableSpec is the `vulnerable:` key of a Spec.
type VulnerableSpec struct {
	// MinSeverity is the lowest level hidden: low, moderate (or medium),
	// high or critical. The level comes from the record's CVSS vector, else
	// from the database's own field; a record with neither hides nothing.
	MinSeverity string `yaml:"min_severity"`
	// ExemptIDs are advisories judged not to apply: an id (GHSA-…) or any
	// of its aliases (a CVE).
	ExemptIDs []string `yaml:"exempt_ids"`
	// ExemptNames are exact package names no vulnerability hides.
	ExemptNames []string `yaml:"exempt_names"`
}

// compileAdvisories reads the malicious and vulnerable keys of s.
func (l *leaf) compileAdvisories(s *Spec, bad func(key string, i int, entry string, format string, args ...any)) {
	ids := func(key string, entries []string) []string {
		var out []string
		for i, e := range entries {
			if e == "" || strings.ContainsFunc(e, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
				bad(key, i, e, "want an advisory id or alias, such as GHSA-c2qf-rxjj-qqgw or CVE-2022-25883")
				continue
			}
			out = append(out, e)
		}
		return out
	}
	switch s.Malicious {
	case "", "off":
	case "block":
		l.malicious = &osv.Rule{Malicious: true, ExemptIDs: ids("malicious_exempt", s.MaliciousExempt)}
	default:
		bad("malicious", -1, "", "%s: want \"block\" or \"off\"", strconv.QuoteToASCII(s.Malicious))
	}
	vs := s.Vulnerable
	if vs == nil {
		return
	}
	sev, ok := osv.ParseSeverity(vs.MinSeverity)
	if !ok {
		bad("vulnerable.min_severity", -1, "", "%s: want low, moderate, high or critical", strconv.QuoteToASCII(vs.MinSeverity))
		return
	}
	r := &osv.Rule{MinSeverity: sev, ExemptIDs: ids("vulnerable.exempt_ids", vs.ExemptIDs)}
	for i, e := range vs.ExemptNames {
		if g, err := compileGlob(e); err != nil || g.kind != globExact {
			bad("vulnerable.exempt_names", i, e, "want an exact package name, not a pattern")
			continue
		}
		r.ExemptNames = append(r.ExemptNames, e)
	}
	l.vulnerable = r
}

// advisory decides one advisory rule on f: the advisory that blocks, or
// nil. Without a database (none configured, or none loaded yet) nothing
// is known to be affected.
func (l *leaf) advisory(r *osv.Rule, name string, f *Facts) *osv.Advisory {
	if r == nil || l.db == nil {
		return nil
	}
	return r.Blocking(l.db, name, f.Version)
}

// MalwareOnly is p's malicious-package rules alone, with their database
// and exemptions; nil when p has none. It is what decides on a feed's own
// packages, which no other rule touches (cooldowns, scripts, licences and
// ranges are for what connectors bring).
func (p *Policy) MalwareOnly() *Policy {
	if p == nil {
		return nil
	}
	out := &Policy{}
	for _, l := range p.leaves {
		if l.malicious != nil {
			out.leaves = append(out.leaves, &leaf{label: l.label, malicious: l.malicious, db: l.db, fp: l.fp})
		}
	}
	if len(out.leaves) == 0 {
		return nil
	}
	out.fp = fingerprintOf(out.leaves)
	return out
}

// Malware is why a malicious-package rule of p blocks version of name, ""
// when none does: what a publish of that version is refused for, since a
// registry that hides the version from every connector must not host it
// either. Only the malicious rules decide (with their exemptions): a
// vulnerability is no reason to refuse a fix's author.
func (p *Policy) Malware(name, version string) string {
	if p == nil {
		return ""
	}
	f := &Facts{Version: version}
	for _, l := range p.leaves {
		if a := l.advisory(l.malicious, name, f); a != nil {
			return l.advisoryReason(ruleMalicious, name+"@"+version, a)
		}
	}
	return ""
}

// advisoryReason is the Reason of a malicious or vulnerable outcome.
func (l *leaf) advisoryReason(rule uint8, pkg string, a *osv.Advisory) string {
	if rule == ruleMalicious {
		return fmt.Sprintf("%s is blocked: %s; malicious is \"block\"", pkg, showText(a.Reason()))
	}
	return fmt.Sprintf("%s is blocked: %s; vulnerable.min_severity is %s", pkg, showText(a.Reason()), l.vulnerable.MinSeverity)
}

// showText keeps a message from a database printable ASCII, as show does
// for names.
func showText(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// advisoriesFingerprint is the rules' part of the fingerprint, written
// only when set so that rule sets without them keep theirs.
func (l *leaf) advisoriesFingerprint(b *strings.Builder) {
	if r := l.malicious; r != nil {
		b.WriteString("\nmalicious block")
		for _, id := range r.ExemptIDs {
			b.WriteString(" " + strconv.Quote(id))
		}
	}
	if r := l.vulnerable; r != nil {
		b.WriteString("\nvulnerable " + r.MinSeverity.String())
		for _, id := range r.ExemptIDs {
			b.WriteString(" " + strconv.Quote(id))
		}
		b.WriteString(" names")
		for _, n := range r.ExemptNames {
			b.WriteString(" " + strconv.Quote(n))
		}
	}
}

// UsesAdvisories reports whether a rule of p reads an OSV database.
func (p *Policy) UsesAdvisories() bool {
	if p == nil {
		return false
	}
	for _, l := range p.leaves {
		if l.malicious != nil || l.vulnerable != nil {
			return true
		}
	}
	return false
}

// WithAdvisories returns a copy of p whose advisory rules decide with db
// (nil: they block nothing). The fingerprint is p's: a caller whose
// database changes keys its documents by the database too.
func (p *Policy) WithAdvisories(db osv.Advisories) *Policy {
	if !p.UsesAdvisories() {
		return p
	}
	out := &Policy{fp: p.fp}
	for _, l := range p.leaves {
		if l.malicious != nil || l.vulnerable != nil {
			c := *l
			c.db = db
			l = &c
		}
		out.leaves = append(out.leaves, l)
	}
	return out
}
