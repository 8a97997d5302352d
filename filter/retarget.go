package filter

// RetargetTag says where a dist-tag that points at target goes once the
// policy has filtered the versions; allowed holds the version strings still
// allowed (any order; strings that are not strict semver are ignored).
//
//   - If target is itself in allowed, the tag stays: (target, true).
//   - Otherwise the tag moves to the highest allowed version, by semver
//     precedence, that is not a prerelease and not greater than target. A
//     stable tag ("latest") is thus never moved to a prerelease nor to a
//     newer version than the one its publisher chose.
//   - When target is a prerelease ("next" -> "2.0.0-beta.3"), allowed
//     prereleases of the same major.minor.patch that precede it
//     ("2.0.0-beta.2") are candidates too, so a prerelease channel falls back
//     to the previous build of the same release before an older stable one.
//   - Versions of equal precedence (differing only in build metadata, which
//     npm ignores when it compares) are ordered by their string, the
//     smallest first, so "1.0.0" is chosen over "1.0.0+build.1".
//   - ok=false means drop the tag: no candidate, or target is not strict
//     semver (it cannot be compared). The npm CLI, given no "latest", picks
//     the highest version satisfying "*" by itself, which is an allowed
//     version.
func RetargetTag(target string, allowed []string) (string, bool) {
	for _, a := range allowed {
		if a == target {
			return target, true
		}
	}
	t, ok := parseVersion(target)
	if !ok {
		return "", false
	}
	best, bestStr, found := ver{}, "", false
	for _, a := range allowed {
		v, ok := parseVersion(a)
		if !ok || compareVer(&v, &t) > 0 {
			continue
		}
		if v.Pre != "" && (t.Pre == "" || v.Major != t.Major || v.Minor != t.Minor || v.Patch != t.Patch) {
			continue
		}
		if found {
			c := compareVer(&v, &best)
			if c < 0 || (c == 0 && a >= bestStr) {
				continue
			}
		}
		best, bestStr, found = v, a, true
	}
	return bestStr, found
}
