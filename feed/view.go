package feed

import (
	"context"
	"strconv"
	"time"

	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/proxy/npm"
)

// VersionView is one version of a package as the web UI shows it: where
// it comes from and what this feed's policy decides on it.
type VersionView struct {
	V *npm.Version
	// Connector is the connector the version comes from, "" when it was
	// published to the feed.
	Connector string
	Published time.Time
	Facts     filter.Facts
	Decision  filter.Decision
	// Until is when a cooldown lets a blocked version through; zero when
	// none will.
	Until time.Time
}

// PackageView is every version a feed knows of a package, allowed or
// not, with the documents they come from (the local one first).
type PackageView struct {
	Name  string
	Local bool
	// Docs are the local document and each connector's, unfiltered, in
	// priority order: Docs[0] is the one a description or README is read
	// from.
	Docs        []*npm.Packument
	Versions    []VersionView
	NameBlocked map[string]string
	Built       time.Time
}

// ViewKey loads a package as a request would (revalidating it upstream
// when its index is old) and returns a key that changes whenever what the
// feed serves of it changes: documents, rules, local writes, a cooldown
// ending. A view built for one key stays right until expires.
//
// A name the feed does not know takes its place under admit first (the
// miss limit), as a packument request does: a page is no way around it.
func (f *Feed) ViewKey(ctx context.Context, admit AdmitFunc, name string) (key string, expires time.Time, err error) {
	pol := f.Rules.Load()
	local := f.LookupLocal(name)
	if admit != nil && !f.Known(ctx, pol, name, local) {
		done, aerr := admit()
		if aerr != nil {
			return "", time.Time{}, aerr
		}
		if done != nil {
			defer func() { done(err) }() // err: the named result
		}
	}
	ld, err := f.loadIndex(ctx, pol, name, local)
	if err != nil {
		return "", time.Time{}, err
	}
	if ld.ix.notFound {
		return "", time.Time{}, ld.ix.notFoundError(name, f.Name)
	}
	key = "ui\x00" + f.Name + "\x00" + pol.fingerprint + "\x00" + name + "\x00" +
		strconv.FormatUint(ld.ix.fingerprint, 16) + "\x00" + strconv.FormatUint(f.Generation(name), 10)
	return key, ld.ix.expires, nil
}

// View reads every document of a package from what the feed has stored
// (the local document and the connectors' snapshots: never upstream) and
// decides on each version under the connector's policy, as Explain does.
// Call ViewKey first: it brings the snapshots up to date.
func (f *Feed) View(ctx context.Context, name string) (*PackageView, error) {
	pv := &PackageView{Name: name, NameBlocked: map[string]string{}, Built: time.Now()}
	local, err := f.ReadLocal(ctx, name)
	if err != nil {
		return nil, err
	}
	if local != nil && local.Packument != nil && len(local.Packument.Versions) > 0 {
		doc, _, err := local.AsPackument()
		if err != nil {
			return nil, err
		}
		pv.Docs = append(pv.Docs, doc)
		times := doc.PublishTimes()
		for _, v := range doc.Versions {
			pv.Versions = append(pv.Versions, VersionView{V: v, Published: times[v.Version], Facts: VersionFacts(v, times), Decision: filter.Decision{Allowed: true}})
		}
	}
	if f.LocalOnly(name, local) {
		pv.Local = true
		return pv, nil
	}
	pol := f.Rules.Load()
	for i, c := range f.Connectors {
		p := pol.PerConnector[i]
		if d := p.Name(name); !d.Allowed {
			pv.NameBlocked[c.Name] = d.Reason
			continue
		}
		r := f.ReadConnector(ctx, c, i, name, true)
		if r.err != nil || r.notFound {
			continue
		}
		pv.Docs = append(pv.Docs, r.doc)
		pv.addVersions(p, c.Name, r.doc)
	}
	return pv, nil
}

func (pv *PackageView) addVersions(p *filter.Policy, connector string, doc *npm.Packument) {
	times := doc.PublishTimes()
	all := docFacts(p, doc)
	for i, v := range doc.Versions {
		d := p.Version(pv.Name, all[i], pv.Built)
		vv := VersionView{V: v, Connector: connector, Published: times[v.Version], Facts: all[i], Decision: d}
		if !d.Allowed && d.Rule == filter.RuleMinReleaseAge {
			vv.Until = p.NextChange(pv.Name, all[i:i+1], pv.Built)
		}
		pv.Versions = append(pv.Versions, vv)
	}
}
