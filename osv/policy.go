package osv

import (
	"fmt"
	"slices"
	"strings"
)

// Rule is what a feed or a connector decides on advisories: the
// "malicious: block" and "vulnerable: {min_severity, exempt_ids,
// exempt_names}" of the configuration, compiled.
type Rule struct {
	// Malicious blocks every version a malicious-package record names.
	Malicious bool
	// MinSeverity blocks versions a vulnerability of at least this level
	// affects; SeverityUnknown blocks none.
	MinSeverity Severity
	// ExemptIDs never block, malicious or not: an advisory id or any of
	// its aliases (a CVE), for an advisory judged not to apply.
	ExemptIDs []string
	// ExemptNames are packages no vulnerability blocks (a malicious
	// record still does: a name is too broad to wave malware through).
	ExemptNames []string
}

// Blocking is the advisory that makes the rule block version of name,
// nil for none: of those that block, a malicious record first, then the
// highest level, then the lowest id, so the answer names the same
// advisory every time. It allocates nothing.
func (r *Rule) Blocking(db Advisories, name, version string) *Advisory {
	if db == nil || !r.Malicious && r.MinSeverity == SeverityUnknown {
		return nil
	}
	var best *Advisory
	for _, a := range db.Affecting(name, version) {
		if !r.blocks(a, name) {
			continue
		}
		if best == nil || ranks(a, best) {
			best = a
		}
	}
	return best
}

func (r *Rule) blocks(a *Advisory, name string) bool {
	if slices.ContainsFunc(r.ExemptIDs, a.Is) {
		return false
	}
	if a.Malicious {
		return r.Malicious
	}
	if r.MinSeverity == SeverityUnknown || a.Severity < r.MinSeverity {
		return false
	}
	return !slices.ContainsFunc(r.ExemptNames, func(n string) bool { return strings.EqualFold(n, name) })
}

// ranks reports whether a should be named before b.
func ranks(a, b *Advisory) bool {
	if a.Malicious != b.Malicious {
		return a.Malicious
	}
	if a.Severity != b.Severity {
		return a.Severity > b.Severity
	}
	return a.ID < b.ID
}

// Reason says why an advisory blocks, for a 403 body, a log line and
// npmgate explain: "malicious package (MAL-2025-46974)" or
// "vulnerability GHSA-c2qf-rxjj-qqgw (moderate, CVSS 5.3)".
func (a *Advisory) Reason() string {
	if a.Malicious {
		return "malicious package (" + a.ID + ")"
	}
	if a.Score > 0 {
		return fmt.Sprintf("vulnerability %s (%s, CVSS %.1f)", a.ID, a.Severity, a.Score)
	}
	return fmt.Sprintf("vulnerability %s (%s)", a.ID, a.Severity)
}
