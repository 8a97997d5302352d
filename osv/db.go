package osv

import (
	"errors"
	"slices"
	"strings"
)

// Advisories is what a policy asks of a database: the advisories that
// affect one version of one package. *DB and *source.Source implement it.
type Advisories interface {
	Affecting(name, version string) []*Advisory
}

// DB is an index of advisories by package name. It is built once and
// never changed, so any number of readers share it without locks; a
// source.Source replaces a whole DB to refresh.
type DB struct {
	byName map[string][]entry
	stats  Stats
}

// Stats counts what a load kept and what it skipped, and why.
type Stats struct {
	Records   int   // advisories kept
	Malicious int   // of which malicious-package records
	Packages  int   // distinct package names
	Bytes     int64 // inflated bytes read
	// Skipped records, by reason.
	TooLarge     int
	DuplicateKey int
	Invalid      int
	Withdrawn    int
	NotNPM       int
}

// Skipped is the number of records read and not kept.
func (s Stats) Skipped() int {
	return s.TooLarge + s.DuplicateKey + s.Invalid + s.Withdrawn + s.NotNPM
}

// Errors of a load that fails as a whole: a database that would come of
// it must not replace a good one.
var (
	ErrEmpty    = errors.New("osv: the export has no npm record")
	ErrCorrupt  = errors.New("osv: most records of the export are unreadable")
	ErrTooMany  = errors.New("osv: the export has too many records or entries")
	ErrTooBig   = errors.New("osv: the export inflates past its bound")
	ErrZipBomb  = errors.New("osv: a zip entry inflates far more than JSON does")
	ErrNotFound = errors.New("osv: no database at that path")
)

// Stats reports what the load of db kept and skipped.
func (db *DB) Stats() Stats {
	if db == nil {
		return Stats{}
	}
	return db.stats
}

// Affecting lists the advisories that affect version of name, nil when
// none does. A name no advisory names costs one map lookup and allocates
// nothing, which is what nearly every call of the render path is.
func (db *DB) Affecting(name, version string) []*Advisory {
	if db == nil {
		return nil
	}
	// The index is by lowercased name: a record may spell a name as its
	// package page does ("Axios"), npm names it lowercase. ToLower of a
	// lowercase name returns it without allocating.
	entries := db.byName[strings.ToLower(name)]
	if len(entries) == 0 {
		return nil
	}
	v, ok := parseStrict(version)
	var out []*Advisory
	for i := range entries {
		if entries[i].affects(version, v, ok) {
			out = append(out, entries[i].adv)
		}
	}
	return out
}

// Named lists every advisory naming name, in id order.
func (db *DB) Named(name string) []*Advisory {
	if db == nil {
		return nil
	}
	entries := db.byName[strings.ToLower(name)]
	out := make([]*Advisory, len(entries))
	for i := range entries {
		out[i] = entries[i].adv
	}
	return out
}

// entries is for the audit answers: the entries of name, nil for none.
func (db *DB) entries(name string) []entry {
	if db == nil {
		return nil
	}
	return db.byName[strings.ToLower(name)]
}

// Is reports whether id is the advisory's id or one of its aliases
// (an exemption may name a GHSA id, a CVE or a MAL- id).
func (a *Advisory) Is(id string) bool {
	return strings.EqualFold(a.ID, id) || slices.ContainsFunc(a.Aliases, func(s string) bool { return strings.EqualFold(s, id) })
}

// Title is what a client prints as the advisory's headline: its summary,
// else the first line of its details, else its id.
func (a *Advisory) Title() string {
	if a.Summary != "" {
		return a.Summary
	}
	if line, _, _ := strings.Cut(strings.TrimSpace(a.Details), "\n"); line != "" {
		return cut(line, maxSummary)
	}
	return a.ID
}

// builder collects records into a DB.
type builder struct {
	lim    Limits
	stats  Stats
	byName map[string][]entry
	seen   map[string]struct{} // ids: an export lists each once
}

func newBuilder(lim Limits) *builder {
	return &builder{lim: lim.withDefaults(), byName: map[string][]entry{}, seen: map[string]struct{}{}}
}

// add parses one record and indexes it, or counts why not. Only the
// bound on the number of records fails the load.
func (b *builder) add(data []byte) error {
	b.stats.Bytes += int64(len(data))
	a, err := ParseRecord(data, b.lim)
	switch {
	case err == nil:
	case errors.Is(err, ErrTooLarge):
		b.stats.TooLarge++
		return nil
	case errors.Is(err, ErrDuplicateKey):
		b.stats.DuplicateKey++
		return nil
	case errors.Is(err, ErrWithdrawn):
		b.stats.Withdrawn++
		return nil
	case errors.Is(err, ErrNotNPM):
		b.stats.NotNPM++
		return nil
	default:
		b.stats.Invalid++
		return nil
	}
	if _, dup := b.seen[a.ID]; dup {
		// Two records with one id are two readings of one advisory.
		b.stats.DuplicateKey++
		return nil
	}
	if b.stats.Records >= b.lim.Records {
		return ErrTooMany
	}
	b.seen[a.ID] = struct{}{}
	b.stats.Records++
	if a.Malicious {
		b.stats.Malicious++
	}
	b.index(a)
	return nil
}

// index adds one entry per package name the advisory affects, with the
// ranges and versions of all its entries for that name (GHSA writes one
// affected entry per vulnerable line of a package).
func (b *builder) index(a *Advisory) {
	for _, af := range a.Affected {
		key := strings.ToLower(af.Name)
		list := b.byName[key]
		if n := len(list); n > 0 && list[n-1].adv == a {
			// Concat, not append: the first entry's slices are the
			// advisory's own, shared rather than copied.
			last := &list[n-1]
			last.ranges = slices.Concat(last.ranges, af.Ranges)
			last.versions = slices.Concat(last.versions, af.Versions)
			continue
		}
		b.byName[key] = append(list, entry{adv: a, name: af.Name, ranges: slices.Clip(af.Ranges), versions: slices.Clip(af.Versions)})
	}
}

// db finishes the build: a load that kept nothing, or that could read
// fewer than half of its records, fails.
func (b *builder) db() (*DB, error) {
	if b.stats.Records == 0 {
		return nil, ErrEmpty
	}
	if b.stats.Invalid+b.stats.TooLarge+b.stats.DuplicateKey > b.stats.Records {
		return nil, ErrCorrupt
	}
	for name, list := range b.byName {
		slices.SortFunc(list, func(x, y entry) int { return strings.Compare(x.adv.ID, y.adv.ID) })
		b.byName[name] = slices.Clip(list)
	}
	b.stats.Packages = len(b.byName)
	return &DB{byName: b.byName, stats: b.stats}, nil
}
