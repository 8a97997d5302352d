package feed

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/osv"
	"github.com/npmgate/npmgate/proxy/npm"
)

// Policy is the filter of each of a feed's connectors: the
// connector's own rules, then the feed's. It is swapped whole on reload.
type Policy struct {
	PerConnector []*filter.Policy
	// Local is the malicious-package rules of the feed's filter and of
	// its connectors', with the advisories (nil when none has one): what
	// decides on the feed's own packages, their publishes (CheckMalware)
	// and the versions stored before a record named them.
	Local *filter.Policy
	// fingerprint is part of every cache key of the feed, so documents
	// filtered by old rules are never served after a reload.
	fingerprint string
}

// Advisories is one OSV database as loaded, and its generation: a
// number that changes with every database that replaces another.
type Advisories struct {
	DB         *osv.DB
	Generation uint64
}

func newFeedPolicy(feed *filter.Policy, connectors []*filter.Policy, adv *Advisories) *Policy {
	fp := &Policy{}
	var b strings.Builder
	withDB := func(p *filter.Policy) *filter.Policy {
		if adv != nil && adv.DB != nil {
			return p.WithAdvisories(adv.DB)
		}
		return p
	}
	uses := feed.UsesAdvisories()
	// The feed's rules once, then each connector's own (each chain below
	// repeats the feed's).
	locals := []*filter.Policy{withDB(feed).MalwareOnly()}
	for _, c := range connectors {
		locals = append(locals, withDB(c).MalwareOnly())
		p := filter.Chain(c, feed)
		if p.UsesAdvisories() {
			uses = true
			p = withDB(p)
		}
		fp.PerConnector = append(fp.PerConnector, p)
		b.WriteString(p.Fingerprint())
		b.WriteByte(';')
	}
	if local := filter.Chain(locals...); !local.Empty() {
		fp.Local = local
	}
	// Decisions on advisories are made at render time like the others:
	// a new database is a new fingerprint, so every document is rendered
	// again with it, and nothing is looked up on a warm request.
	if uses && adv != nil && adv.DB != nil {
		b.WriteString("osv " + strconv.FormatUint(adv.Generation, 10) + ";")
	}
	if strings.Trim(b.String(), ";") != "" {
		fp.fingerprint = b.String()
	}
	return fp
}

// blockedVersion is a version a policy hid, and why.
type blockedVersion struct {
	v        *npm.Version
	decision filter.Decision
}

// VersionFacts are what a policy decides on for one version.
func VersionFacts(v *npm.Version, times map[string]time.Time) filter.Facts {
	license, deprecated, scripts := v.Meta()
	return filter.Facts{Version: v.Version, Published: times[v.Version], License: license, Deprecated: deprecated, HasInstallScript: scripts}
}

// docFacts are the facts of every version of doc, in doc.Versions order,
// with what the other versions show when pol has a rule that reads it
// (see filter.WithHistory): taken before anything is removed, so a version
// another rule hides still counts as history.
func docFacts(pol *filter.Policy, doc *npm.Packument) []filter.Facts {
	times := doc.PublishTimes()
	all := make([]filter.Facts, len(doc.Versions))
	history := pol.NeedsHistory()
	for i, v := range doc.Versions {
		all[i] = VersionFacts(v, times)
		if history {
			all[i].Provenance = v.Provenance()
		}
	}
	if history {
		filter.WithHistory(all)
	}
	return all
}

// applyPolicy removes from doc the versions pol blocks and returns them,
// and when a cooldown will let a version through next.
func applyPolicy(pol *filter.Policy, name string, doc *npm.Packument, now time.Time) ([]blockedVersion, time.Time) {
	if pol.Empty() {
		return nil, time.Time{}
	}
	all := docFacts(pol, doc)
	var blocked []blockedVersion
	i := 0 // Remove asks about doc.Versions in order
	doc.Remove(func(v *npm.Version) bool {
		d := pol.Version(name, all[i], now)
		i++
		if !d.Allowed {
			blocked = append(blocked, blockedVersion{v, d})
		}
		return d.Allowed
	})
	return blocked, pol.NextChange(name, all, now)
}

// repairTags points dist-tags whose version is gone (filtered, or absent
// upstream) at the highest allowed version that is not above it, or drops
// them.
func repairTags(doc *npm.Packument) {
	present := make(map[string]bool, len(doc.Versions))
	allowed := make([]string, 0, len(doc.Versions))
	for _, v := range doc.Versions {
		present[v.Version] = true
		allowed = append(allowed, v.Version)
	}
	tags := doc.DistTags[:0:0]
	for _, t := range doc.DistTags {
		if present[t.Version] {
			tags = append(tags, t)
			continue
		}
		if to, ok := filter.RetargetTag(t.Version, allowed); ok {
			tags = append(tags, npm.Tag{Name: t.Name, Version: to})
		}
	}
	doc.DistTags = tags
}

// notice summarises what a policy hid, for the npm-notice header that npm
// prints: a hidden version cannot explain itself inside the packument.
func notice(name string, blocked []blockedVersion) string {
	if len(blocked) == 0 {
		return ""
	}
	byRule := map[string]int{}
	for _, b := range blocked {
		byRule[b.decision.Rule]++
	}
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(byRule)) {
		parts = append(parts, fmt.Sprintf("%s: %d", r, byRule[r]))
	}
	return fmt.Sprintf("npmgate: this feed's policy hides %d version(s) of %s (%s); run npmgate explain %s for details",
		len(blocked), name, strings.Join(parts, ", "), name)
}
