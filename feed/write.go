package feed

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/proxy/npm"
)

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
