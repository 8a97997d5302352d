package filter

import (
	"fmt"
	"sort"
	"strconv"
)

// The trust rules (provenance: no-downgrade, install_scripts: no-new)
// decide on a version by what the package's other versions show, so their
// facts come from the whole document: WithHistory fills them in from every
// version of it, before any rule has removed one.

// WithHistory sets, in place, the history fields of every element of fs
// (EarlierProvenance, PreviousRelease, PreviousHadScripts) from the
// Version, Provenance and HasInstallScript of all of them, and returns fs.
// fs holds every version of one package document, blocked ones included:
// a version another rule hides (a cooldown, a block range, a deny entry)
// still shows how the package is published, so hiding it must not make the
// next release look like the first with scripts or without provenance, and
// a verdict does not change when a cooldown ends or a rule is added
// elsewhere in the chain.
//
// "Earlier" and "previous" are by semver precedence among releases
// (versions without a prerelease part), not by publish time, which a
// backport to an old line would confuse. A prerelease is compared with the
// releases that precede it: 2.1.0-beta.1 with 2.0.x and below. Prereleases
// are never the history of another version: a canary channel published from
// CI is no promise about the releases. Build metadata is ignored, as in
// every other rule. A version key that is not strict semver cannot be
// placed, so it is compared with everything: its previous release is the
// package's highest, and any release with provenance is earlier (fail
// closed; npm never installs such a key anyway).
//
// The major line (for provenance) is npm's caret range: the same major for
// 1.0.0 and above, the same minor below it (0.3.x), and 0.0.x as one line
// (caret would make each 0.0.z a line of its own, which no version could
// downgrade). Install scripts compare with the previous release of the
// whole package, whatever its line.
func WithHistory(fs []Facts) []Facts {
	type rel struct {
		v    ver
		i    int // index in fs
		prov string
	}
	rels := make([]rel, 0, len(fs))
	for i := range fs {
		if v, ok := parseVersion(fs[i].Version); ok && v.Pre == "" {
			rels = append(rels, rel{v: v, i: i})
		}
	}
	sort.SliceStable(rels, func(a, b int) bool { return compareVer(&rels[a].v, &rels[b].v) < 0 })
	// accepted[k]: rels[k]'s install scripts, if any, are not new: it is
	// the first release, or the release before it had accepted scripts.
	// since[k]: for scripts that are new, the release they came in.
	accepted := make([]bool, len(rels))
	since := make([]string, len(rels))
	for k := range rels {
		f := &fs[rels[k].i]
		switch {
		case !f.HasInstallScript || k == 0:
			accepted[k] = true
		case fs[rels[k-1].i].HasInstallScript && accepted[k-1]:
			accepted[k] = true
		case fs[rels[k-1].i].HasInstallScript:
			since[k] = since[k-1]
		default:
			since[k] = f.Version
		}
	}
	// rels[k].prov: the highest release with provenance at or below rels[k]
	// in its line. Lines are contiguous in semver order.
	newest := "" // the highest release with provenance of any line
	for k := range rels {
		if k > 0 && sameLine(&rels[k-1].v, &rels[k].v) {
			rels[k].prov = rels[k-1].prov
		}
		if f := &fs[rels[k].i]; f.Provenance {
			rels[k].prov = f.Version
			newest = f.Version
		}
	}
	for i := range fs {
		f := &fs[i]
		f.EarlierProvenance, f.PreviousRelease, f.PreviousHadScripts, f.NewScriptsSince = "", "", false, ""
		v, ok := parseVersion(f.Version)
		k := len(rels) - 1 // an invalid key: after everything
		if ok {
			// The last release that precedes v.
			k = sort.Search(len(rels), func(j int) bool { return compareVer(&rels[j].v, &v) >= 0 }) - 1
		}
		if k < 0 {
			continue
		}
		prev := &fs[rels[k].i]
		f.PreviousRelease = prev.Version
		f.PreviousHadScripts = prev.HasInstallScript && accepted[k]
		f.NewScriptsSince = since[k]
		switch {
		case !ok:
			f.EarlierProvenance = newest
		case sameLine(&rels[k].v, &v):
			f.EarlierProvenance = rels[k].prov
		}
	}
	return fs
}

// sameLine reports whether a and b are in one major line (see WithHistory).
func sameLine(a, b *ver) bool {
	if a.Major != b.Major {
		return false
	}
	return a.Major > 0 || a.Minor == b.Minor
}

// lineOf names v's major line, "2.x" or "0.3.x", or "" for an invalid
// version.
func lineOf(version string) string {
	v, ok := parseVersion(version)
	switch {
	case !ok:
		return ""
	case v.Major > 0:
		return strconv.FormatUint(v.Major, 10) + ".x"
	default:
		return "0." + strconv.FormatUint(v.Minor, 10) + ".x"
	}
}

// trustReason is the Reason of a new-install-scripts or
// provenance-downgrade outcome.
func trustReason(rule uint8, pkg string, f *Facts) string {
	if rule == ruleNewScripts && f.NewScriptsSince != "" {
		return fmt.Sprintf("%s has an install script (preinstall, install, postinstall or binding.gyp) that no accepted release had: it came in %s, which this rule hides too; install_scripts is \"no-new\" (list the package in install_scripts_allow to accept it)",
			pkg, show(f.NewScriptsSince))
	}
	if rule == ruleNewScripts {
		return fmt.Sprintf("%s has an install script (preinstall, install, postinstall or binding.gyp) and the previous release %s had none; install_scripts is \"no-new\"",
			pkg, show(f.PreviousRelease))
	}
	line := lineOf(f.Version)
	if line == "" {
		return fmt.Sprintf("%s has no provenance and is not valid semver, so it is compared with every release: %s had one (npm trusted publishing / attestation); provenance is \"no-downgrade\"",
			pkg, show(f.EarlierProvenance))
	}
	return fmt.Sprintf("%s has no provenance; %s of the same major line (%s) had one (npm trusted publishing / attestation); provenance is \"no-downgrade\"",
		pkg, show(f.EarlierProvenance), line)
}

// compileTrust reads the provenance keys of s (install_scripts: no-new is
// read with the other install_scripts values).
func (l *leaf) compileTrust(s *Spec, bad func(key string, i int, entry string, format string, args ...any), globs func(string, []string) globList) {
	switch s.Provenance {
	case "", "off":
	case "no-downgrade":
		l.provenance = true
	default:
		bad("provenance", -1, "", "%s: want \"off\" or \"no-downgrade\"", strconv.QuoteToASCII(s.Provenance))
	}
	l.provExempt = globs("provenance_exempt", s.ProvenanceExempt)
}

// trust decides the trust rules on f: ruleNewScripts, ruleProvenance or
// ruleNone.
func (l *leaf) trust(name string, f *Facts) uint8 {
	if l.newScripts && f.HasInstallScript && f.PreviousRelease != "" && !f.PreviousHadScripts && l.scriptsAllow.match(name) < 0 {
		return ruleNewScripts
	}
	if l.provenance && !f.Provenance && f.EarlierProvenance != "" && l.provExempt.match(name) < 0 {
		return ruleProvenance
	}
	return ruleNone
}

// NeedsHistory reports whether a rule of p reads the history fields of
// Facts (or Provenance), so that a caller may skip WithHistory otherwise.
func (p *Policy) NeedsHistory() bool {
	if p == nil {
		return false
	}
	for _, l := range p.leaves {
		if l.newScripts || l.provenance {
			return true
		}
	}
	return false
}
