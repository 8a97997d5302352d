package feed

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
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
