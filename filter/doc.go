// Package filter is npmgate's filtering policy: which package names and which
// versions a connector or a feed serves. It is pure policy: no HTTP, no
// storage, no JSON. The proxy asks Name before any upstream request, asks
// Version for every version of a packument (and for every tarball), moves
// dist-tags with RetargetTag, keys cached filtered documents by Fingerprint
// and expires them at NextChange.
//
// # Rules
//
// A Spec (the `filter:` YAML key) compiles into a Policy. Within one policy a
// version goes through the rules in this order; the first that blocks gives
// the Decision and its stable Rule id:
//
//	exclude          name matches exclude, or a "!name" include entry
//	include          include has positive entries and none matches the name
//	deny             exact known-malicious name@version
//	allow            name@range: allowed, skip every rule below
//	invalid-version  the version is not strict semver and a block or deny
//	                 entry names the package (fail closed)
//	block            name@range
//	min-release-age  younger than min_release_age, or no publish time
//	deprecated       deprecated: hide
//	install-scripts  install_scripts: block, name not in install_scripts_allow
//	new-install-scripts
//	                 install_scripts: no-new, the version has an install
//	                 script and the previous release had none, name not in
//	                 install_scripts_allow
//	provenance-downgrade
//	                 provenance: no-downgrade, the version has no provenance
//	                 and an earlier release of its major line had one, name
//	                 not in provenance_exempt
//	license          licenses: allow, deny, unknown
//
// Chain combines policies (connector's, then feed's): allowed only when all
// allow; the first policy that blocks decides. An allow entry overrides only
// the rules of its own policy.
//
// # Decisions on the open points
//
//   - Name patterns: '*' matches any run of characters except '/'; "*" alone
//     matches every name, "@scope/*" (and its shorthand "@scope") every
//     package of the scope. Case-sensitive. Only characters npm allows in
//     names are accepted, so a typo is a Compile error, not a dead rule.
//   - Exclusion beats inclusion whatever the order of the entries; "!name" in
//     include is an exclusion.
//   - The trust rules (new-install-scripts, provenance-downgrade) read the
//     history fields of Facts, which WithHistory computes from every version
//     of the document before filtering; its comment says what "earlier",
//     "previous" and "major line" mean. A package's first release never
//     brings new install scripts, and the first release of a major line
//     never downgrades provenance (install scripts compare across lines).
//   - Allow overrides block, min_release_age (including a missing time),
//     deprecated, install_scripts (block and no-new), provenance and
//     licenses; it does not override deny
//     (see the comment in leaf.version), the name rules, or invalid-version.
//   - Deny entries are an exact name and an exact strict-semver version; they
//     match by semver precedence, so "x@1.0.0" also denies "1.0.0+rebuild".
//   - Ranges have the syntax and semantics of Masterminds/semver/v3. For
//     block, a prerelease is blocked when the range matches it with
//     prereleases included (by precedence: "<2.0.0" blocks "2.0.0-beta") or
//     matches its release ("x@>=2.0.0" blocks "2.1.0-beta.1"): a block list
//     must not be bypassed by publishing a prerelease. For allow, semver/v3's
//     default holds: a range matches prereleases only if it names one, so an
//     allow entry never widens to prereleases.
//   - Build metadata is ignored when comparing, as the npm CLI does: a range
//     matching 1.0.0 matches 1.0.0+anything.
//   - A version key that is not strict SemVer 2.0.0 ("v1.2.3", "1.2",
//     "latest") is blocked with invalid-version when a block or deny entry
//     names the package: the rule cannot be checked, so it fails closed
//     (security.md T14). No allow entry can match such a version, so it
//     cannot be allow-listed. Without such entries the key passes (npm
//     itself ignores invalid version keys).
//   - A version without a publish time is hidden by min_release_age (fail
//     closed, security.md T15 and K3) rather than treated as old like npm's
//     "--before" does; min_release_age_exempt and allow lift it. A publish
//     time in the future counts as young.
//   - Licenses: SPDX expressions; "A OR B" is permitted if either side is,
//     "A AND B" if both are; ids compare case-insensitively; a missing or
//     non-SPDX license is decided by licenses.unknown (default allow, even
//     when licenses.allow is set).
//   - RetargetTag moves a tag to the highest allowed non-prerelease version
//     not above the target by precedence; for a prerelease target, earlier
//     prereleases of the same major.minor.patch are candidates too; a
//     non-semver target or no candidate drops the tag.
//   - Reasons are printable ASCII: untrusted names, versions and licenses
//     are quoted with Go escapes when needed, so a Reason can go into the
//     npm-notice header.
//
// # Performance
//
// Version does not allocate when it allows (BenchmarkVersion): ranges are
// evaluated by an allocation-free port of semver/v3's comparison functions,
// checked against the library by FuzzRangeMatchesMasterminds.
package filter
