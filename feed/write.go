package feed

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/proxy/npm"
)

// CheckConnectors refuses the first publish of a name a connector of the
// feed serves: the local package would hide every upstream version from
// everyone who installs through the feed (a takeover of a public name).
// Claimed names are never asked about, and admins may publish anyway.
// When a connector cannot be asked, the publish is refused too.
func (f *Feed) CheckConnectors(ctx context.Context, name string, p *auth.Principal) error {
	if f.Claimed(name) || f.Access.Load().Check(p, auth.Admin) == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.Deadline())
	defer cancel()
	pol := f.Rules.Load()
	for i, c := range f.Connectors {
		if !pol.PerConnector[i].Name(name).Allowed {
			continue // its users never get the name from this connector
		}
		r := f.ReadConnector(ctx, c, i, name, false)
		switch {
		case r.err != nil:
			f.Deps.Log.Warn("publish refused: connector cannot be asked about the name", "feed", f.Name, "connector", c.Name, "package", name, "err", r.err)
			return &Refusal{Kind: ErrConnectorUnaskable, Cause: r.err, Msg: fmt.Sprintf("connector %q cannot be asked whether it serves %s (%v), and a name it may serve is not published over; try again, or claim the name for this feed in feeds.%s.owned_names", c.Name, name, r.err, f.Name)}
		case r.doc != nil:
			effect := "replace the public package"
			if f.Merged(name) {
				effect = "add versions to the public package"
			}
			return Refuse(ErrConnectorServes, "%s is served by connector %q of feed %q: publishing it here would %s for everyone using the feed. To publish your own package under this name, claim it in feeds.%s.owned_names (or use an owned scope); or have an admin of the feed publish it",
				name, c.Name, f.Name, effect, f.Name)
		}
	}
	return nil
}

// Publish stores a new version, parsed and checked against itself
// (npm.ParsePublish), for p: signed, refused if malware, if a connector
// serves a new name, or if the document as it is does not take it
// (Publishable, decided again under the package's lock); tags are the
// dist-tags the client sent.
func (f *Feed) Publish(ctx context.Context, pub *npm.Publish, tags map[string]string, p *auth.Principal) error {
	pub.Doc["_npmUser"] = npm.MustJSON(Maintainer{Name: p.Name})
	// Signed now and stored, so every replica serves the one signature.
	if sg := f.Deps.Signer; sg != nil {
		if err := SignVersion(sg, pub.Doc); err != nil {
			return err
		}
	}
	if err := f.CheckMalware(pub.Name, pub.Version); err != nil {
		return err
	}
	existing, err := f.ReadLocal(ctx, pub.Name)
	if err != nil {
		return err
	}
	if existing == nil || existing.Packument == nil {
		// A name already local is not asked about again: it is the
		// feed's, and its maintainers decide.
		if err := f.CheckConnectors(ctx, pub.Name, p); err != nil {
			return err
		}
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	// A publish refused by the document as it is now stores nothing.
	if _, err := Publishable(f, p, existing, pub, now); err != nil {
		return err
	}
	// The tarball first, and outside the document's update (with replicas
	// a database transaction holding the package's row lock): a crash now
	// leaves an unreferenced, content-addressed file, never a document
	// that points at missing bytes, and no upload holds the lock.
	if err := f.Deps.Blobs.Put(ctx, cache.TarballKey("sha512", hex.EncodeToString(pub.Sum512)), pub.Tarball); err != nil {
		return err
	}
	err = f.UpdateLocal(ctx, pub.Name, func(d *LocalDoc) (*LocalDoc, error) {
		// Decided again on the locked document: another publish may
		// have landed since.
		d, err := Publishable(f, p, d, pub, now)
		if err != nil {
			return nil, err
		}
		d.AddVersion(pub, tags, p.Name, now)
		return d, nil
	})
	if err != nil {
		return err
	}
	f.Deps.Log.Info("published", "feed", f.Name, "package", pub.Name, "version", pub.Version, "user", p.Name, "bytes", len(pub.Tarball))
	return nil
}

// SetDistTag points a dist-tag of a local package at one of its versions
// (npm dist-tag add), for a maintainer or admin p.
func (f *Feed) SetDistTag(ctx context.Context, p *auth.Principal, name, tag, version string) error {
	return f.UpdateAs(ctx, p, name, "", func(d *LocalDoc) error {
		if _, ok := d.Packument.Versions[version]; !ok {
			return Refuse(ErrNotFound, "%s@%s does not exist", name, version)
		}
		d.Packument.DistTags[tag] = version
		return nil
	})
}

// RemoveDistTag removes a dist-tag of a local package (npm dist-tag rm).
func (f *Feed) RemoveDistTag(ctx context.Context, p *auth.Principal, name, tag string) error {
	return f.UpdateAs(ctx, p, name, "", func(d *LocalDoc) error {
		if _, ok := d.Packument.DistTags[tag]; !ok {
			return Refuse(ErrNotFound, "%s has no dist-tag %q", name, tag)
		}
		delete(d.Packument.DistTags, tag)
		return nil
	})
}

// Star applies npm star or unstar by p, who may read the feed: their own
// entry in the package's users, and nothing else. Only packages published
// to the feed keep stars (a connector's package is starred on its own
// registry).
func (f *Feed) Star(ctx context.Context, name string, body *WriteBody, p *auth.Principal) error {
	starred := body.Users[p.Name]
	return f.UpdateLocal(ctx, name, func(d *LocalDoc) (*LocalDoc, error) {
		if d == nil || d.Packument == nil {
			return nil, Refuse(ErrNotLocal, "%s is not a package published to feed %q; only local packages can be starred here (star a connector's package on its own registry)", name, f.Name)
		}
		lp := d.Packument
		if body.Rev != "" && body.Rev != lp.Rev {
			return nil, Refuse(ErrConflict, "document revision %s is not the current one (%s); fetch it again", body.Rev, lp.Rev)
		}
		for u := range body.Users {
			if u != p.Name && body.Users[u] != lp.Users[u] {
				return nil, Refuse(auth.ErrForbidden, "a star changes only your own entry in users, not %q's", u)
			}
		}
		for u := range lp.Users {
			if _, kept := body.Users[u]; !kept && u != p.Name {
				return nil, Refuse(auth.ErrForbidden, "a star changes only your own entry in users, not %q's", u)
			}
		}
		if starred {
			if lp.Users == nil {
				lp.Users = map[string]bool{}
			}
			lp.Users[p.Name] = true
		} else {
			delete(lp.Users, p.Name)
		}
		lp.Rev = NextRev(lp.Rev)
		return d, nil
	})
}

// CheckMalware refuses to publish a version an OSV malicious-package
// record names, under the advisory rules of the feed or of any of its
// connectors (malicious: block, with their exemptions): a name npm took
// down is free to publish here, and the feed would then be where the
// malware is installed from. Admins are refused too: nobody hosts
// known malware by mistake.
func (f *Feed) CheckMalware(name, version string) error {
	if why := f.Rules.Load().Local.Malware(name, version); why != "" {
		return Refuse(ErrBlocked, "%s: a version the advisory database records as malware is not published to feed %q", why, f.Name)
	}
	return nil
}

// CheckNewMaintainers refuses maintainers who are not users of the
// server: only existing users can be added (npm owner add).
func (f *Feed) CheckNewMaintainers(d *LocalDoc, sent []Maintainer) error {
	for _, m := range sent {
		if m.Name == "" || slices.ContainsFunc(d.Packument.Maintainers, func(o Maintainer) bool { return o.Name == m.Name }) {
			continue
		}
		exists, err := f.Deps.Users.Exists(m.Name)
		if err != nil {
			return auth.Unavailable(err)
		}
		if !exists {
			return Refuse(ErrNotFound, "no user %q: only existing users can maintain a package", m.Name)
		}
	}
	return nil
}

// WriteBody is what npm, yarn and pnpm PUT to /{name}: a publish when
// it carries a tarball attachment, else a metadata change (deprecate,
// owner, star, and the document PUT of unpublish).
type WriteBody struct {
	ID          string                     `json:"_id"`
	Name        string                     `json:"name"`
	Rev         string                     `json:"_rev"`
	DistTags    map[string]string          `json:"dist-tags"`
	Versions    map[string]json.RawMessage `json:"versions"`
	Attachments map[string]npm.Attachment  `json:"_attachments"`
	Maintainers []Maintainer               `json:"maintainers"`
	// Users is what npm star and unstar send.
	Users map[string]bool `json:"users"`
}

// UpdateAs is update for a change only the package's maintainers and the
// feed's admins may make.
func (f *Feed) UpdateAs(ctx context.Context, p *auth.Principal, name, rev string, change func(*LocalDoc) error) error {
	return f.Update(ctx, name, rev, func(d *LocalDoc) error {
		if err := f.MayChange(p, d); err != nil {
			return err
		}
		return change(d)
	})
}

// MayChange refuses a change to an existing local package by anyone but
// its maintainers and the feed's admins, saying who may.
func (f *Feed) MayChange(p *auth.Principal, d *LocalDoc) error {
	if f.Access.Load().Check(p, auth.Admin) == nil {
		return nil
	}
	lp := d.Packument
	var names []string
	for _, m := range lp.Maintainers {
		if p != nil && m.Name == p.Name {
			return nil
		}
		names = append(names, m.Name)
	}
	who := "you"
	if p != nil {
		who = p.Name
	}
	if len(names) == 0 {
		return Refuse(ErrNotMaintainer, "%s has no maintainers: only an admin of feed %q (feeds.%s.access.admin) may change it", lp.Name, f.Name, f.Name)
	}
	return Refuse(ErrNotMaintainer, "%s may not change %s: only its maintainers (%s) or an admin of feed %q may; one of them can add %s with npm owner add %s %s",
		who, lp.Name, strings.Join(names, ", "), f.Name, who, who, lp.Name)
}

// withMaintainers sets a version's maintainers to the package's: what the
// client sent is never kept.
func withMaintainers(version json.RawMessage, ms []Maintainer) json.RawMessage {
	var v map[string]json.RawMessage
	if json.Unmarshal(version, &v) != nil {
		return version
	}
	v["maintainers"] = npm.MustJSON(ms)
	return npm.MustJSON(v)
}

// IsStar reports whether a document PUT is npm star or unstar: _id, _rev
// and users, nothing else.
func (b *WriteBody) IsStar() bool {
	return b.Users != nil && b.Versions == nil && b.DistTags == nil && b.Maintainers == nil && len(b.Attachments) == 0
}

// Publishable checks that p may publish pub over the package's current
// document d (nil when it has none), which it returns, made when new.
func Publishable(f *Feed, p *auth.Principal, d *LocalDoc, pub *npm.Publish, now string) (*LocalDoc, error) {
	name, version, sv := pub.Name, pub.Version, pub.SemVer
	if d != nil && d.Packument != nil {
		if err := f.MayChange(p, d); err != nil {
			return nil, err
		}
	}
	if d == nil {
		d = &LocalDoc{Published: map[string]string{}}
	}
	if d.Packument == nil {
		d.Packument = &LocalPackument{ID: name, Name: name, DistTags: map[string]string{}, Time: map[string]string{"created": now}}
	}
	if _, taken := d.Published[version]; taken {
		return nil, Refuse(ErrConflict, "cannot publish over the previously published version %s@%s", name, version)
	}
	for existing := range d.Published {
		if ev, err := semver.NewVersion(existing); err == nil && ev.Equal(sv) && ev.Metadata() == sv.Metadata() {
			return nil, Refuse(ErrConflict, "cannot publish over the previously published version %s@%s", name, existing)
		}
	}
	return d, nil
}

// AddVersion adds a validated publish to the document, with its
// dist-tags (latest when it sent none), by publisher.
func (d *LocalDoc) AddVersion(pub *npm.Publish, distTags map[string]string, publisher, now string) {
	version := pub.Version
	lp := d.Packument
	if lp.Versions == nil {
		lp.Versions = map[string]json.RawMessage{}
	}
	if len(lp.Maintainers) == 0 {
		lp.Maintainers = []Maintainer{{Name: publisher}}
	}
	lp.Versions[version] = withMaintainers(npm.MustJSON(pub.Doc), lp.Maintainers)
	lp.Time[version], lp.Time["modified"] = now, now
	if _, ok := lp.Time["created"]; !ok {
		lp.Time["created"] = now
	}
	tags := distTags
	if len(tags) == 0 {
		tags = map[string]string{"latest": version}
	}
	maps.Copy(lp.DistTags, tags)
	if lp.DistTags["latest"] == "" || lp.Versions[lp.DistTags["latest"]] == nil {
		lp.DistTags["latest"] = version
	}
	if desc := npm.JSONString(pub.Doc["description"]); desc != "" && tags["latest"] == version {
		lp.Description = desc
	}
	if pub.Readme != "" && tags["latest"] == version || lp.Readme == "" {
		lp.Readme = pub.Readme
	}
	lp.Rev = NextRev(lp.Rev)
	d.Published[version] = pub.Integrity
}

// Update applies a change to a local package under its lock. rev, when
// given, must be the current revision (optimistic concurrency).
func (f *Feed) Update(ctx context.Context, name, rev string, change func(*LocalDoc) error) error {
	return f.UpdateLocal(ctx, name, func(d *LocalDoc) (*LocalDoc, error) {
		if d == nil || d.Packument == nil {
			return nil, Refuse(ErrNotLocal, "%s is not a package published to feed %q; only local packages can be changed", name, f.Name)
		}
		if rev != "" && rev != d.Packument.Rev {
			return nil, Refuse(ErrConflict, "document revision %s is not the current one (%s); fetch it again", rev, d.Packument.Rev)
		}
		if err := change(d); err != nil {
			return nil, err
		}
		d.Packument.Rev = NextRev(d.Packument.Rev)
		d.Packument.Time["modified"] = time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
		return d, nil
	})
}

// Unpublish removes a version; its place in Published stays, so it can
// never be published again.
func (d *LocalDoc) Unpublish(v string) {
	lp := d.Packument
	delete(lp.Versions, v)
	for tag, target := range lp.DistTags {
		if target == v {
			delete(lp.DistTags, tag)
		}
	}
	if _, ok := lp.DistTags["latest"]; !ok {
		if best := Highest(slices.Collect(maps.Keys(lp.Versions))); best != "" {
			lp.DistTags["latest"] = best
		}
	}
}

func Highest(versions []string) string {
	var best *semver.Version
	bestRaw := ""
	for _, v := range versions {
		sv, err := semver.NewVersion(v)
		if err != nil {
			continue
		}
		if best == nil || (sv.Prerelease() == "") && (best.Prerelease() != "" || sv.GreaterThan(best)) ||
			(sv.Prerelease() != "") == (best.Prerelease() != "") && sv.GreaterThan(best) {
			best, bestRaw = sv, v
		}
	}
	return bestRaw
}

// ApplyMetadata takes from a document PUT only what a client may change:
// deprecation messages, dist-tags and maintainers. With a revision (the
// unpublish flow), versions missing from the body are unpublished. dist
// and integrity are never taken from the client.
func (d *LocalDoc) ApplyMetadata(body *WriteBody, replace bool) error {
	lp := d.Packument
	if body.Versions != nil {
		for v, stored := range lp.Versions {
			sent, ok := body.Versions[v]
			if !ok {
				if replace {
					d.Unpublish(v)
				}
				continue
			}
			var fields struct {
				Deprecated *string `json:"deprecated"`
			}
			json.Unmarshal(sent, &fields)
			var m map[string]json.RawMessage
			if err := json.Unmarshal(stored, &m); err != nil {
				return err
			}
			if fields.Deprecated != nil && *fields.Deprecated != "" {
				m["deprecated"] = npm.MustJSON(*fields.Deprecated)
			} else {
				delete(m, "deprecated")
			}
			lp.Versions[v] = npm.MustJSON(m)
		}
	}
	if body.DistTags != nil {
		tags := map[string]string{}
		for tag, v := range body.DistTags {
			if err := npm.ValidateTag(tag); err != nil {
				return err
			}
			if _, ok := lp.Versions[v]; ok {
				tags[tag] = v
			}
		}
		if _, ok := tags["latest"]; !ok {
			if best := Highest(slices.Collect(maps.Keys(lp.Versions))); best != "" {
				tags["latest"] = best
			}
		}
		lp.DistTags = tags
	}
	if body.Maintainers != nil {
		var ms []Maintainer
		for _, m := range body.Maintainers {
			if m.Name != "" && !slices.ContainsFunc(ms, func(o Maintainer) bool { return o.Name == m.Name }) {
				ms = append(ms, Maintainer{Name: m.Name})
			}
		}
		if len(ms) == 0 {
			return Refuse(npm.ErrInvalidPublish, "a package keeps at least one maintainer")
		}
		lp.Maintainers = ms
	}
	return nil
}
