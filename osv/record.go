// Package osv is an advisory database in the OSV format
// (https://ossf.github.io/osv-schema/): the records of the npm ecosystem,
// vulnerabilities and malicious packages (MAL-), parsed within bounds,
// indexed by package name, matched against versions with OSV's range
// semantics, and turned into the bodies of the audit endpoints npm, yarn
// and pnpm call. It reads files but touches no network, so a policy can
// import it; package osv/source adds the refresh of a URL with a cache on
// disk.
package osv

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"

	"github.com/npmgate/npmgate/proxy/npm"
)

// Advisory is one OSV record as npmgate keeps it: what a policy decides
// on and what an audit answer prints, nothing else. It is immutable once
// built; the index shares it between readers.
type Advisory struct {
	ID        string
	Aliases   []string
	Summary   string
	Details   string // at most Limits.Details bytes
	Modified  time.Time
	Published time.Time
	// Malicious is set for records of malicious packages: an id starting
	// with MAL- or a record from the OpenSSF malicious-packages project.
	Malicious bool
	// Severity is computed from Vector when there is one, else from the
	// database's own field; a malicious record is Critical.
	Severity Severity
	Score    float64 // CVSS base score of Vector, 0 without a vector
	Vector   string  // CVSS v3.x or v4.0 vector, "" when none was usable
	CWEs     []string
	URL      string // where a person reads about it
	Affected []Affected
}

// Affected is one package the advisory names, in the npm ecosystem.
type Affected struct {
	Name     string
	Ranges   []Range
	Versions []string // listed exactly, matched as strings
}

// Range is a SEMVER or ECOSYSTEM range (the same for npm: its versions
// are SemVer): events sorted as the OSV specification says.
type Range struct {
	Events []Event
	// Limits are the "limit" events: a version is in the range only when
	// below one of them ("*" is no limit).
	Limits []*semver.Version
	limits []version
}

// EventKind is what an event says happens at its version.
type EventKind uint8

const (
	Introduced EventKind = iota
	LastAffected
	Fixed
)

// Event is one point of a range. Version is nil for introduced "0",
// which is before every version.
type Event struct {
	Kind    EventKind
	Version *semver.Version
	Raw     string
	at      version // Version, as the matching compares it
}

// Limits bound what a database may cost to load. The zero value of a
// field means its default (DefaultLimits).
type Limits struct {
	RecordBytes int64 // one record, inflated
	Records     int   // records kept
	TotalBytes  int64 // all records, inflated
	Entries     int   // entries of a zip or files of a directory
	// Ratio is the largest inflated/compressed ratio a zip entry may
	// have once it is past 64 KiB: JSON compresses 5–20 times, a bomb
	// thousands.
	Ratio   int64
	Details int // bytes of details kept
}

// DefaultLimits fit the npm export (over 200,000 records, most of them
// small MAL- records) several times over. Details are cut at 256 bytes:
// no client prints them (npm reads title and url, yarn 1 and pnpm the
// title, paths and url), and over 200,000 records every byte kept costs
// 200 KB of heap.
var DefaultLimits = Limits{
	RecordBytes: 1 << 20,
	Records:     2_000_000,
	TotalBytes:  8 << 30,
	Entries:     2_100_000,
	Ratio:       200,
	Details:     256,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.RecordBytes > 0 {
		d.RecordBytes = l.RecordBytes
	}
	if l.Records > 0 {
		d.Records = l.Records
	}
	if l.TotalBytes > 0 {
		d.TotalBytes = l.TotalBytes
	}
	if l.Entries > 0 {
		d.Entries = l.Entries
	}
	if l.Ratio > 0 {
		d.Ratio = l.Ratio
	}
	if l.Details > 0 {
		d.Details = l.Details
	}
	return d
}

// Bounds on the parts of one record. A record past a structural bound
// (too many ranges, an id or a name too long) is skipped as invalid; text
// past its bound is cut.
const (
	maxIDLen      = 128
	maxNameLen    = 214 // npm's limit on a package name
	maxAliases    = 64
	maxAffected   = 1000
	maxRanges     = 100
	maxEvents     = 1000
	maxVersions   = 20_000
	maxVersionLen = 256
	maxCWEs       = 32
	maxSummary    = 1024
	maxURLLen     = 2048
	maxVectorLen  = 256
)

// Errors of ParseRecord. A record that fails is skipped by a load and
// counted under its reason; none of them fails the load.
var (
	ErrTooLarge     = errors.New("osv: record too large")
	ErrDuplicateKey = errors.New("osv: record has a duplicate key")
	ErrInvalid      = errors.New("osv: invalid record")
	// ErrWithdrawn and ErrNotNPM are records a database does not keep.
	ErrWithdrawn = errors.New("osv: record withdrawn")
	ErrNotNPM    = errors.New("osv: record names no npm package")
)

// The OSV JSON, only the members npmgate reads.
type rawRecord struct {
	ID        string         `json:"id"`
	Aliases   []string       `json:"aliases"`
	Summary   string         `json:"summary"`
	Details   string         `json:"details"`
	Modified  string         `json:"modified"`
	Published string         `json:"published"`
	Withdrawn string         `json:"withdrawn"`
	Severity  []rawSeverity  `json:"severity"`
	Affected  []rawAffected  `json:"affected"`
	Refs      []rawReference `json:"references"`
	DB        rawDBSpecific  `json:"database_specific"`
}

type rawSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type rawAffected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Ranges   []rawRange `json:"ranges"`
	Versions []string   `json:"versions"`
	// The malicious-packages project writes a record's CWE here.
	DB struct {
		CWEs []struct {
			ID string `json:"cweId"`
		} `json:"cwes"`
	} `json:"database_specific"`
}

type rawRange struct {
	Type   string     `json:"type"`
	Events []rawEvent `json:"events"`
}

type rawEvent struct {
	Introduced   string `json:"introduced"`
	Fixed        string `json:"fixed"`
	LastAffected string `json:"last_affected"`
	Limit        string `json:"limit"`
}

type rawReference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type rawDBSpecific struct {
	Severity string          `json:"severity"`
	CWEIDs   []string        `json:"cwe_ids"`
	Origins  json.RawMessage `json:"malicious-packages-origins"`
}

// ParseRecord reads one OSV record. It refuses a record larger than
// lim.RecordBytes, one with a duplicate key (two readings of one record),
// a withdrawn one and one naming no npm package; it keeps only the npm
// entries of affected.
func ParseRecord(data []byte, lim Limits) (*Advisory, error) {
	lim = lim.withDefaults()
	r, err := decodeRecord(data, lim)
	if err != nil {
		return nil, err
	}
	a := &Advisory{
		ID:        r.ID,
		Aliases:   boundedIDs(r.Aliases, nil),
		Summary:   cut(r.Summary, maxSummary),
		Details:   cut(r.Details, lim.Details),
		Modified:  parseTime(r.Modified),
		Published: parseTime(r.Published),
		Malicious: strings.HasPrefix(r.ID, "MAL-") || len(r.DB.Origins) > 0 && string(r.DB.Origins) != "null",
		CWEs:      boundedIDs(r.DB.CWEIDs, nil),
		URL:       advisoryURL(r.ID, r.Refs),
	}
	for i := range r.Affected {
		af, ok, err := parseAffected(&r.Affected[i])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, r.ID, err)
		}
		if !ok {
			continue
		}
		a.Affected = append(a.Affected, af)
		// The malicious-packages project writes the CWE in the entry.
		for _, c := range r.Affected[i].DB.CWEs {
			a.CWEs = boundedIDs([]string{c.ID}, a.CWEs)
		}
	}
	if len(a.Affected) == 0 {
		return nil, ErrNotNPM
	}
	a.Severity, a.Score, a.Vector = severityOf(r.Severity, r.DB.Severity, a.Malicious)
	return a, nil
}

// decodeRecord decodes a record and refuses what is not kept: too
// large, with two readings, withdrawn, out of bounds.
func decodeRecord(data []byte, lim Limits) (*rawRecord, error) {
	if int64(len(data)) > lim.RecordBytes {
		return nil, ErrTooLarge
	}
	// Decoding first checks the syntax (Unmarshal refuses invalid JSON
	// before it sets anything), which the duplicate checks need.
	var r rawRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if path, dup := npm.DuplicateKey(data); dup {
		return nil, fmt.Errorf("%w: %s", ErrDuplicateKey, path)
	}
	if name, odd := foldedFieldName(data); odd {
		return nil, fmt.Errorf("%w: %q is read as a field only by a case-insensitive reader", ErrDuplicateKey, name)
	}
	if r.Withdrawn != "" {
		return nil, ErrWithdrawn
	}
	if r.ID == "" || len(r.ID) > maxIDLen || len(r.Aliases) > maxAliases ||
		len(r.Affected) > maxAffected || len(r.DB.CWEIDs) > maxCWEs {
		return nil, fmt.Errorf("%w: id, aliases, affected or cwe_ids out of bounds", ErrInvalid)
	}
	return &r, nil
}

// boundedIDs appends to to the ids of from that are neither empty, too
// long nor there already, up to maxAliases of them.
func boundedIDs(from, to []string) []string {
	for _, id := range from {
		if id != "" && len(id) <= maxIDLen && len(to) < maxAliases && !slices.Contains(to, id) {
			to = append(to, id)
		}
	}
	return to
}

// parseAffected reads one entry of affected; ok is false for another
// ecosystem. An npm entry that breaks a bound or has an unparsable event
// fails the whole record: half of its ranges would be a wrong answer.
func parseAffected(raw *rawAffected) (Affected, bool, error) {
	if raw.Package.Ecosystem != "npm" {
		return Affected{}, false, nil
	}
	name := raw.Package.Name
	if name == "" || len(name) > maxNameLen {
		return Affected{}, false, errors.New("package name empty or too long")
	}
	if len(raw.Ranges) > maxRanges || len(raw.Versions) > maxVersions {
		return Affected{}, false, errors.New("too many ranges or versions")
	}
	af := Affected{Name: name}
	for _, v := range raw.Versions {
		if v == "" || len(v) > maxVersionLen {
			return Affected{}, false, errors.New("version empty or too long")
		}
		af.Versions = append(af.Versions, v)
	}
	for _, rr := range raw.Ranges {
		// GIT ranges name commits, which an npm version cannot be
		// compared with; the versions list carries what they resolve to.
		if rr.Type != "SEMVER" && rr.Type != "ECOSYSTEM" {
			continue
		}
		rg, err := parseRange(rr.Events)
		if err != nil {
			return Affected{}, false, err
		}
		if len(rg.Events) > 0 {
			af.Ranges = append(af.Ranges, rg)
		}
	}
	if len(af.Ranges) == 0 && len(af.Versions) == 0 {
		// An npm entry that affects nothing we can match: kept out, so
		// that it neither blocks nor appears in an audit.
		return Affected{}, false, nil
	}
	return af, true, nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// cut shortens s to at most n bytes without splitting a character. A cut
// string is copied: a slice of it would keep the whole decoded text alive.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}

// advisoryURL is where a person reads about id: GitHub's page for a GHSA
// id (what npm's own audit prints), else the record's first ADVISORY
// reference, else its first WEB one, else OSV's page.
func advisoryURL(id string, refs []rawReference) string {
	if strings.HasPrefix(id, "GHSA-") {
		return "https://github.com/advisories/" + id
	}
	for _, want := range []string{"ADVISORY", "WEB"} {
		for _, r := range refs {
			if r.Type == want && len(r.URL) <= maxURLLen &&
				(strings.HasPrefix(r.URL, "https://") || strings.HasPrefix(r.URL, "http://")) {
				return r.URL
			}
		}
	}
	return "https://osv.dev/vulnerability/" + id
}
