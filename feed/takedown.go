package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/proxy/npm"
)

// Takedown is a version a connector listed once and no longer does: npm
// removes malicious versions, and replaces whole packages with a
// "0.0.1-security" holding package. npmgate never serves it again from
// that connector, not even from an older snapshot while the connector is
// down.
type Takedown struct {
	Version   string    `json:"version"`
	Integrity string    `json:"integrity,omitempty"`
	File      string    `json:"file,omitempty"` // upstream's tarball file name
	RemovedAt time.Time `json:"removed_at"`
	// Placeholder: the whole package was replaced by a security holding
	// package.
	Placeholder bool `json:"placeholder,omitempty"`
}

// takedownRecord is what is stored under cache.TakedownKey.
type takedownRecord struct {
	Takedowns []Takedown `json:"takedowns"`
}

// Reason is how explain and error messages say what happened.
func (t Takedown) Reason() string {
	s := "removed upstream at " + t.RemovedAt.UTC().Format(time.RFC3339)
	if t.Placeholder {
		s += " (the package was replaced by a security holding package)"
	}
	return s
}

// message is what a client asking for the version reads.
func (t Takedown) message(name string) string {
	return fmt.Sprintf("%s@%s was %s; npmgate no longer serves it", name, t.Version, t.Reason())
}

// maxTakedownRecord bounds a record read back: a package has at most a
// few thousand versions, a line each.
const maxTakedownRecord = 4 << 20

// readTakedowns reads the versions a connector took down from a package.
func (f *Feed) readTakedowns(ctx context.Context, connector, name string) ([]Takedown, error) {
	r, _, err := f.Deps.Snapshots.Get(ctx, cache.TakedownKey(connector, name))
	if errors.Is(err, cache.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the takedown record of %s from %s: %w", name, connector, err)
	}
	defer r.Close()
	var rec takedownRecord
	data, err := io.ReadAll(io.LimitReader(r, maxTakedownRecord))
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the takedown record of %s from %s: %w", name, connector, err)
	}
	return rec.Takedowns, nil
}

// takedownsOf starts reading the takedown record and returns a function
// that waits for it; a reading whose result is never wanted (an upstream
// 404 or failure) finishes in the background.
func (f *Feed) takedownsOf(ctx context.Context, connector, name string) func() ([]Takedown, error) {
	type read struct {
		tds []Takedown
		err error
	}
	ch := make(chan read, 1)
	go func() {
		tds, err := f.readTakedowns(ctx, connector, name)
		ch <- read{tds, err}
	}()
	return sync.OnceValues(func() ([]Takedown, error) {
		r := <-ch
		return r.tds, r.err
	})
}

func (f *Feed) writeTakedowns(ctx context.Context, connector, name string, tds []Takedown) error {
	data, err := json.Marshal(takedownRecord{Takedowns: tds})
	if err != nil {
		return err
	}
	return f.Deps.Snapshots.Put(ctx, cache.TakedownKey(connector, name), bytes.NewReader(data), int64(len(data)))
}

// placeholderVersion is the one version of npm's security holding
// packages.
const placeholderVersion = "0.0.1-security"

// isPlaceholder reports whether an upstream document is a security
// holding package: its one version 0.0.1-security, described as such.
func isPlaceholder(doc *npm.Packument, body []byte) bool {
	return len(doc.Versions) == 1 && doc.Versions[0].Version == placeholderVersion &&
		bytes.Contains(body, []byte("security holding package"))
}

// takenDown lists the versions of old that next no longer has.
func takenDown(old, next *npm.Packument, placeholder bool, now time.Time) []Takedown {
	present := make(map[string]bool, len(next.Versions))
	for _, v := range next.Versions {
		present[v.Version] = true
	}
	var out []Takedown
	for _, v := range old.Versions {
		if !present[v.Version] {
			out = append(out, Takedown{Version: v.Version, Integrity: v.Dist.Integrity, File: v.File, RemovedAt: now, Placeholder: placeholder})
		}
	}
	return out
}

// olderThan reports whether next says it was modified before old was.
func olderThan(next, old *npm.Packument) bool {
	n, err1 := time.Parse(time.RFC3339, next.Modified())
	o, err2 := time.Parse(time.RFC3339, old.Modified())
	return err1 == nil && err2 == nil && n.Before(o)
}

// noteTakedowns compares a connector's new document with its previous
// snapshot and records, quarantines, logs and counts every version that
// is gone. It runs before the new snapshot replaces the old one, so the
// record exists before the evidence of what was there is overwritten.
// It returns the connector's takedowns for the package, old and new.
func (f *Feed) noteTakedowns(ctx context.Context, c *Connector, idx int, name string, snap []byte, next *npm.Packument, body []byte, have []Takedown) []Takedown {
	old, err := npm.Parse(snap, idx)
	if err != nil {
		return have // an unreadable snapshot says nothing of what was there
	}
	if olderThan(next, old) {
		// A lagging replica of the registry (a CDN edge, a mirror still
		// syncing) that has not seen the latest versions yet: removing a
		// version modifies the document, so this is no takedown.
		return have
	}
	known := make(map[string]bool, len(have))
	for _, t := range have {
		known[t.Version] = true
	}
	var added []Takedown
	for _, t := range takenDown(old, next, isPlaceholder(next, body), time.Now()) {
		if !known[t.Version] {
			added = append(added, t)
		}
	}
	if len(added) == 0 {
		return have
	}
	all := append(have[:len(have):len(have)], added...)
	if err := f.writeTakedowns(ctx, c.Name, name, all); err != nil {
		// Acted on all the same: the new snapshot, which replaces the
		// old one, no longer lists the versions, and serving is what
		// matters; only an older snapshot surfacing again, and explain,
		// need the record.
		f.Deps.Log.Error("takedown: recording failed", "connector", c.Name, "package", name, "err", err)
	}
	for _, t := range added {
		f.quarantine(c.Name, name, t)
		f.Deps.Metrics.CountTakedown(c.Name)
	}
	return all
}

// quarantine logs one takedown and moves its tarball, if stored, out of
// the served store into the quarantine area.
func (f *Feed) quarantine(connector, name string, t Takedown) {
	moved := false
	if dg, err := npm.ParseDigest(npm.Dist{Integrity: t.Integrity}); err == nil {
		var qerr error
		if moved, qerr = f.Deps.Disk.Quarantine(cache.TarballKey(dg.Algo, dg.Hex())); qerr != nil {
			f.Deps.Log.Error("takedown: quarantining the tarball failed", "connector", connector, "package", name, "version", t.Version, "err", qerr)
		}
	}
	f.Deps.Log.Warn("takedown: version removed upstream; no longer served", "connector", connector, "package", name,
		"version", t.Version, "integrity", t.Integrity, "placeholder", t.Placeholder, "tarball_quarantined", moved)
}

// withoutTakedowns drops the versions a connector took down from its
// document, whichever reading (upstream's, or an older snapshot's) it is.
func withoutTakedowns(doc *npm.Packument, tds []Takedown) {
	if len(tds) == 0 {
		return
	}
	gone := make(map[string]bool, len(tds))
	for _, t := range tds {
		gone[t.Version] = true
	}
	doc.Remove(func(v *npm.Version) bool { return !gone[v.Version] })
}

// sweepTakedowns quarantines this machine's copies of tarballs taken down
// that are still in the served store: with replicas, the one that noticed
// moved only the copy on its own disk (and a download in flight at the
// takedown may have landed since). A rename that finds nothing is all it
// costs, and only for packages with takedowns.
func (f *Feed) sweepTakedowns(connector, name string, tds []Takedown) {
	for _, t := range tds {
		dg, err := npm.ParseDigest(npm.Dist{Integrity: t.Integrity})
		if err != nil {
			continue
		}
		if moved, err := f.Deps.Disk.Quarantine(cache.TarballKey(dg.Algo, dg.Hex())); moved || err != nil {
			f.Deps.Log.Warn("takedown: quarantined this replica's copy of a tarball taken down upstream", "connector", connector,
				"package", name, "version", t.Version, "integrity", t.Integrity, "err", err)
		}
	}
}
