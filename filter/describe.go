package filter

import (
	"fmt"
	"strings"
	"time"
)

// Describe says in words what the policy does, one sentence per rule, in
// the order Version applies them; a policy that allows everything says
// nothing. Entries are quoted as they were written. It is what the web UI
// shows for a feed, so a reader learns the rules without reading YAML.
func (p *Policy) Describe() []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, l := range p.leaves {
		for _, s := range l.describe() {
			if l.label != "" {
				s = l.label + ": " + s
			}
			out = append(out, s)
		}
	}
	return out
}

func (l *leaf) describe() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if len(l.include.text) > 0 {
		add("Only packages named %s are served.", quoted(l.include.text))
	}
	if len(l.exclude.text) > 0 {
		add("Packages named %s are never served.", quoted(l.exclude.text))
	}
	if len(l.deny) > 0 {
		texts := make([]string, len(l.deny))
		for i, d := range l.deny {
			texts[i] = d.text
		}
		add("Known-malicious versions denied: %s.", quoted(texts))
	}
	if r := l.malicious; r != nil {
		s := "Versions the advisory database (OSV) records as malware are blocked, whatever else allows them."
		if len(r.ExemptIDs) > 0 {
			s += fmt.Sprintf(" Advisories judged not to apply: %s.", quoted(r.ExemptIDs))
		}
		out = append(out, s)
	}
	if len(l.allow) > 0 {
		add("Always allowed (other version rules skipped): %s.", quoted(rangeTexts(l.allow)))
	}
	if len(l.block) > 0 {
		add("Blocked version ranges: %s.", quoted(rangeTexts(l.block)))
	}
	if r := l.vulnerable; r != nil {
		s := fmt.Sprintf("Versions with a known vulnerability of severity %s or higher are blocked.", l.vulnerable.MinSeverity)
		if len(r.ExemptIDs) > 0 {
			s += fmt.Sprintf(" Advisories judged not to apply: %s.", quoted(r.ExemptIDs))
		}
		if len(r.ExemptNames) > 0 {
			s += fmt.Sprintf(" Exempt packages: %s.", quoted(r.ExemptNames))
		}
		out = append(out, s)
	}
	if l.age > 0 {
		s := fmt.Sprintf("Cooldown: versions are served %s after they are published.", days(l.age))
		if len(l.ageExempt.text) > 0 {
			s += fmt.Sprintf(" Exempt: %s.", quoted(l.ageExempt.text))
		}
		out = append(out, s)
	}
	if l.hideDeprecated {
		add("Deprecated versions are hidden.")
	}
	if l.blockScripts || l.newScripts {
		s := "Versions with install scripts are blocked."
		if l.newScripts {
			s = "A version that adds install scripts its previous release did not have is blocked."
		}
		if len(l.scriptsAllow.text) > 0 {
			s += fmt.Sprintf(" Exempt: %s.", quoted(l.scriptsAllow.text))
		}
		out = append(out, s)
	}
	if l.provenance {
		s := "A version without provenance is blocked when an earlier release of its major line had it."
		if len(l.provExempt.text) > 0 {
			s += fmt.Sprintf(" Exempt: %s.", quoted(l.provExempt.text))
		}
		out = append(out, s)
	}
	if r := l.lic; r != nil {
		if len(r.allowText) > 0 {
			add("Licences allowed: %s.", quoted(r.allowText))
		}
		if len(r.denyText) > 0 {
			add("Licences denied: %s.", quoted(r.denyText))
		}
		if r.unknownBlock {
			add("Versions without a recognised licence are blocked.")
		}
	}
	return out
}

func rangeTexts(rs []rangeRule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.text
	}
	return out
}

func quoted(texts []string) string {
	q := make([]string, len(texts))
	for i, t := range texts {
		q[i] = show(t)
	}
	return strings.Join(q, ", ")
}

// days writes a cooldown as it is usually written: in days when it is
// whole days.
func days(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return fmtDur(d)
}
