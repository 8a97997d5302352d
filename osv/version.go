package osv

import (
	"github.com/Masterminds/semver/v3"

	"github.com/npmgate/npmgate/internal/vers"
)

// version is a SemVer 2.0.0 version as precedence compares it (build
// metadata is ignored, §10). The render path asks about every version of
// every document, so a query version is parsed into this value, on the
// stack, rather than into a *semver.Version: a name with advisories and
// an unaffected version allocates nothing. Events are parsed with
// Masterminds/semver when a record loads (which also reads "1.0" as
// 1.0.0) and converted; TestVersionOrderAgreesWithMasterminds checks the
// two orders agree.
type version = vers.Version

func fromSemver(v *semver.Version) version {
	return version{Major: v.Major(), Minor: v.Minor(), Patch: v.Patch(), Pre: v.Prerelease()}
}

// parseStrict reads MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] as npm writes
// versions; ok is false for anything else (a leading "v", "1.0", a
// leading zero, an empty identifier).
func parseStrict(s string) (version, bool) { return vers.Parse(s) }

// compare is SemVer 2.0.0 precedence (§11).
func compare(a, b version) int { return vers.Compare(&a, &b) }
