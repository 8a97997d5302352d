package filter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Spec is the YAML shape of a rule set, as it appears under a connector's or
// a feed's `filter:` key. Compile checks it and turns it into a Policy.
type Spec struct {
	// Include lists the package names served, as name patterns (see below);
	// empty means every name. An entry "!pattern" excludes instead, like an
	// Exclude entry.
	Include []string `yaml:"include"`
	// Exclude lists name patterns never served. An exclusion wins over any
	// include entry, whatever the order.
	Exclude []string `yaml:"exclude"`
	// Block lists "name@range" entries: the versions of the package(s) in the
	// semver range are hidden. The name may be a pattern; the range has the
	// syntax of github.com/Masterminds/semver/v3 ("<4.17.21", ">=2.0.0
	// <2.1.0", "^1.2.3 || ~2.0", "*"). A prerelease is blocked when the range
	// matches it or its release (2.1.0-beta.1 is blocked by ">=2.1.0").
	Block []string `yaml:"block"`
	// Deny lists known-malicious versions as "name@version", with an exact
	// name and an exact version. Nothing overrides it, not even Allow.
	Deny []string `yaml:"deny"`
	// Allow lists "name@range" entries whose versions skip every other
	// version rule (block, min_release_age, deprecated, install_scripts,
	// licenses) but not Deny and not the name rules. The range matches
	// prereleases only if it names one, as semver/v3 does.
	Allow []string `yaml:"allow"`
	// MinReleaseAge hides versions published less than this long ago (a
	// cooldown: most malicious releases are found and unpublished within
	// days). A version without a publish time is hidden.
	MinReleaseAge Duration `yaml:"min_release_age"`
	// MinReleaseAgeExempt lists name patterns the cooldown does not apply to.
	MinReleaseAgeExempt []string `yaml:"min_release_age_exempt"`
	// Deprecated is "pass" (the default) or "hide".
	Deprecated string `yaml:"deprecated"`
	// InstallScripts is "allow" (the default), "block" or "no-new": "block"
	// hides versions with a preinstall, install or postinstall script (or a
	// binding.gyp, which npm builds with node-gyp rebuild); "no-new" hides
	// only a version that has one when the previous release (semver order,
	// see WithHistory) had none, as a stolen-token release adding a
	// postinstall does.
	InstallScripts string `yaml:"install_scripts"`
	// InstallScriptsAllow lists name patterns exempt from install_scripts.
	InstallScriptsAllow []string `yaml:"install_scripts_allow"`
	// Licenses filters on the package.json "license" field.
	Licenses *LicenseSpec `yaml:"licenses"`
	// Provenance is "off" (the default) or "no-downgrade": hide a version
	// published without a provenance attestation or a trusted publisher
	// when an earlier release of its major line had one (see WithHistory).
	Provenance string `yaml:"provenance"`
	// ProvenanceExempt lists name patterns the provenance rule does not
	// apply to.
	ProvenanceExempt []string `yaml:"provenance_exempt"`
	// Malicious is "block" or "off": "block" hides every version an OSV
	// malicious-package record (MAL-…) names, and nothing overrides it but
	// MaliciousExempt (not Allow, not a name). The policy package makes
	// "block" the default of feeds when osv.source is set.
	Malicious string `yaml:"malicious"`
	// MaliciousExempt lists advisory ids (or aliases) of malicious-package
	// records judged wrong.
	MaliciousExempt []string `yaml:"malicious_exempt"`
	// Vulnerable hides the versions a vulnerability of at least
	// min_severity affects (OSV ranges: introduced, fixed, last_affected).
	Vulnerable *VulnerableSpec `yaml:"vulnerable"`
}

// LicenseSpec filters versions on their SPDX license expression.
type LicenseSpec struct {
	// Allow, when not empty, lists the only licenses permitted (SPDX ids,
	// or "id WITH exception"; case-insensitive).
	Allow []string `yaml:"allow"`
	// Deny lists licenses never permitted.
	Deny []string `yaml:"deny"`
	// Unknown decides on a version whose license is missing or is not an
	// SPDX expression ("SEE LICENSE IN ...", "Public Domain"): "allow" (the
	// default) or "block".
	Unknown string `yaml:"unknown"`
}

// Duration is a time.Duration that YAML writes as "72h", "30m", "90s" or,
// for cooldowns, in days: "7d", "1.5d", "1d12h".
type Duration time.Duration

// UnmarshalYAML reads a duration scalar; a bad one is an error naming the
// line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 72h, 30m or 7d", n.Line)
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration: %v", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration the way UnmarshalYAML reads it.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String writes whole days as "7d" and anything else as time.Duration does.
func (d Duration) String() string {
	const day = 24 * time.Hour
	if t := time.Duration(d); t > 0 && t%day == 0 {
		return strconv.FormatInt(int64(t/day), 10) + "d"
	}
	return fmtDur(time.Duration(d))
}

// parseDuration parses time.ParseDuration syntax with a leading count of days
// allowed ("7d", "1.5d", "2d12h"). Negative durations are refused.
func parseDuration(s string) (time.Duration, error) {
	const want = "want for example 72h, 30m or 7d"
	if s == "" {
		return 0, fmt.Errorf("empty; %s", want)
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative")
	}
	var total time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		num := s[:i]
		if num == "" || strings.Trim(num, "0123456789.") != "" {
			return 0, fmt.Errorf("bad day count; %s", want)
		}
		days, err := strconv.ParseFloat(num, 64)
		if err != nil || days > float64(math.MaxInt64/int64(24*time.Hour))-1 {
			return 0, fmt.Errorf("bad day count; %s", want)
		}
		total = time.Duration(days * float64(24*time.Hour))
		rest = s[i+1:]
		if rest == "" {
			return total, nil
		}
		if rest[0] < '0' || rest[0] > '9' {
			return 0, fmt.Errorf("bad duration after the days; %s", want)
		}
	}
	v, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("%s", want)
	}
	if v < 0 || total+v < total {
		return 0, fmt.Errorf("out of range")
	}
	return total + v, nil
}
