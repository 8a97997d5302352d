package npm

import "time"

// Meta reads what a policy decides on from a version object: its license
// (an SPDX expression, "" when absent or unreadable), whether it is
// deprecated, and whether it runs an install script: a preinstall, install
// or postinstall script, or a binding.gyp ("gypfile": true), which npm
// builds with node-gyp rebuild when there is no install script.
func (v *Version) Meta() (license string, deprecated, installScript bool) {
	_ = eachMember(v.raw, func(k string, val []byte) bool {
		switch k {
		case "license":
			if len(val) > 0 && val[0] == '{' { // the old {"type": "MIT"} form
				if t, ok := member(val, "type"); ok {
					license = stringValue(t)
				}
			} else {
				license = stringValue(val)
			}
		case "deprecated":
			deprecated = stringValue(val) != ""
		case "scripts":
			installScript = installScript || hasInstallScript(val)
		case "hasInstallScript", "gypfile":
			installScript = installScript || string(val) == "true"
		}
		return true
	})
	return license, deprecated, installScript
}

// Provenance reports whether the version was published with a provenance
// attestation ("dist": {"attestations": {"provenance": ...}}) or by a
// trusted publisher ("_npmUser": {"trustedPublisher": {...}}), as npmjs
// writes them for packages published from CI with OIDC. It is what the
// document says: the attestation itself is not fetched or verified.
func (v *Version) Provenance() bool {
	found := false
	_ = eachMember(v.raw, func(k string, val []byte) bool {
		switch k {
		case "dist":
			if att, ok := member(val, "attestations"); ok {
				p, ok := member(att, "provenance")
				found = ok && len(p) > 0 && p[0] == '{'
			}
		case "_npmUser":
			tp, ok := member(val, "trustedPublisher")
			found = ok && len(tp) > 0 && tp[0] == '{'
		}
		return !found
	})
	return found
}

// PublishTimes maps each version to its time entry; versions without one,
// or with an unreadable one, are absent.
func (p *Packument) PublishTimes() map[string]time.Time {
	m := make(map[string]time.Time, len(p.Time))
	for _, t := range p.Time {
		if ts, err := time.Parse(time.RFC3339Nano, stringValue(t.Value)); err == nil {
			m[t.Key] = ts
		}
	}
	return m
}

// Remove drops the versions keep refuses, with their time entries, and
// returns them; keep is asked about each version in order. Dist-tags are
// the caller's to repair.
func (p *Packument) Remove(keep func(*Version) bool) []*Version {
	var removed []*Version
	kept := p.Versions[:0:0]
	gone := map[string]bool{}
	for _, v := range p.Versions {
		if keep(v) {
			kept = append(kept, v)
		} else {
			removed = append(removed, v)
			gone[v.Version] = true
		}
	}
	if len(removed) == 0 {
		return nil
	}
	p.Versions = kept
	times := p.Time[:0:0]
	for _, t := range p.Time {
		if !gone[t.Key] {
			times = append(times, t)
		}
	}
	p.Time = times
	return removed
}
