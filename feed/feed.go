package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/singleflight"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/policy"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
	"github.com/npmgate/npmgate/sign"
)

// Feed is one served registry and the connectors it reads through.
type Feed struct {
	Name        string
	Deps        *Deps
	Access      atomic.Pointer[auth.FeedAccess]
	Connectors  []*Connector
	OwnedScopes []string
	MergeNames  []string
	// OwnedNames are names and prefixes claimed like owned scopes.
	OwnedNames []string
	// gens holds a generation per package that was written locally; it
	// is part of rendered documents' keys (see invalidate).
	gens  sync.Map
	Rules atomic.Pointer[Policy]
	Audit *AuditTarget // nil: npm audit is off for this feed
	// rules and advisories are what Rules is built from (see rebuild).
	rulesMu    sync.Mutex
	rules      *policy.Feed
	advisories *Advisories
}

// Deps are what feeds are built from, given explicitly: the stores,
// the metrics, the log and the settings they use. A feed has no way to
// the server that serves it.
type Deps struct {
	Mem       *cache.Memory
	Disk      *cache.Disk
	Snapshots cache.Store
	// Blobs holds tarballs: this machine's disk, in front of the bucket
	// when replicas share one.
	Blobs    cache.Blobs
	Packages Packages
	Users    auth.UserStore
	Metrics  Metrics
	Log      *slog.Logger
	Cache    config.Cache
	// flight makes concurrent misses of one key share one computation.
	flight   singleflight.Group
	Prefetch *Prefetches
	// Signer signs local versions (dist.signatures); nil signs nothing.
	Signer *sign.Signer
}

// Metrics is what feeds count; the server's metrics implement it.
type Metrics interface {
	CountCoalesced(resource string)
	CountFilterBlock(rule string)
	CountRender(representation string)
	CountIntegrityFailure(connector string)
	// CountTakedown counts a version a connector took down.
	CountTakedown(connector string)
}

// AdmitFunc takes a place under the miss limit for a lookup of a name
// the feed does not know (see Server.admit); done gives it back.
type AdmitFunc func() (done func(err error), err error)

type Connector struct {
	Name   string
	Client *upstream.Client
	Config *config.Connector
}

// loaded is the result of loading a package: always its index, and its
// parsed document when the load had to read one.
type loaded struct {
	ix  *Index
	doc *npm.Packument
}

// pkgKey keys a package's index under the rules it was filtered by.
func (f *Feed) pkgKey(pol *Policy, name string) string {
	return "p\x00" + f.Name + "\x00" + pol.fingerprint + "\x00" + name
}

// loadIndex returns a package's index, revalidating it upstream when it is older
// than max_age. Concurrent loads of one package share one upstream round.
//
// pol is the one snapshot of the feed's rules a request uses throughout, so
// that a reload in the middle never files one rule set's results under the
// other's keys. local is the request's reading of the local document
// (nil: read it when needed).
func (f *Feed) loadIndex(ctx context.Context, pol *Policy, name string, local *LocalLookup) (*loaded, error) {
	key := f.pkgKey(pol, name)
	if it, ok := f.Deps.Mem.Get(key); ok && time.Now().Before(it.Expires) {
		return &loaded{ix: it.Value.(*Index)}, nil
	}
	return coalesce(f, ctx, key, func(ctx context.Context) (*loaded, error) {
		return f.mergeSources(ctx, pol, name, false, local)
	})
}

// coalesce runs fn once for all concurrent callers with the same key. fn
// runs detached from any one client, with its own deadline, so a client
// that goes away does not fail the others.
func coalesce[T any](f *Feed, ctx context.Context, key string, fn func(context.Context) (T, error)) (T, error) {
	ch := f.Deps.flight.DoChan(key, func() (any, error) {
		c, cancel := context.WithTimeout(context.Background(), f.Deadline())
		defer cancel()
		return fn(c)
	})
	select {
	case r := <-ch:
		if r.Shared {
			f.Deps.Metrics.CountCoalesced("packument")
		}
		if r.Err != nil {
			var zero T
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// Deadline bounds one load of a package across all its connectors.
func (f *Feed) Deadline() time.Duration {
	d := time.Minute
	for _, c := range f.Connectors {
		d = max(d, 4*c.Config.Timeout.D())
	}
	return d
}

// connResult is one connector's answer for a package.
type connResult struct {
	// blockedName is set when the policy refused the name: no request.
	blockedName string
	doc         *npm.Packument
	body        []byte
	notFound    bool
	stale       bool
	err         error
	expires     time.Time
	// takedowns are the versions the connector took down: not in doc.
	takedowns []Takedown
}

// mergeSources reads the package's local document and every connector's
// document (from its snapshot when fresh, else upstream), merges them in
// priority order (local first) and stores the index. A name with local
// versions, or in an owned scope, is local-only: no connector is asked,
// not even for a 404. offline reads snapshots only, never upstream.
func (f *Feed) mergeSources(ctx context.Context, pol *Policy, name string, offline bool, lookup *LocalLookup) (*loaded, error) {
	if lookup == nil {
		lookup = f.LookupLocal(name)
	}
	local, err := lookup.doc(ctx)
	if err != nil {
		return nil, err
	}
	conns := f.Connectors
	if f.LocalOnly(name, local) {
		conns = nil
	}
	results := f.askConnectors(ctx, pol, conns, name, offline)
	now := time.Now()
	m := &merging{ix: &Index{loaded: now}, expires: now.Add(f.Deps.Cache.MaxAge.D()), h: xxhash.New()}
	if local != nil && local.Packument != nil && len(local.Packument.Versions) > 0 {
		if err := signLocal(f.Deps.Signer, local); err != nil {
			return nil, err
		}
		doc, raw, err := local.AsPackument()
		if err != nil {
			return nil, err
		}
		// Only malware rules touch the feed's own packages: a version
		// published before a record named it goes from the document, and
		// its tarball is refused.
		hidden, _ := applyPolicy(pol.Local, name, doc, now)
		m.blocked = append(m.blocked, hidden...)
		for _, b := range hidden {
			f.Deps.Metrics.CountFilterBlock(b.decision.Rule)
			m.h.WriteString(b.v.Version + ",")
		}
		m.docs = append(m.docs, doc)
		m.found = true
		m.h.Write(strconv.AppendUint(nil, xxhash.Sum64(raw), 16))
		m.h.WriteString(";")
	}
	for i, r := range results {
		f.addResult(m, pol.PerConnector[i], name, r, now)
	}
	ix := m.ix
	ix.fingerprint = m.h.Sum64()
	if !m.found {
		if m.firstErr != nil {
			return nil, m.firstErr
		}
		ix.notFound = true
		ix.expires = now.Add(f.Deps.Cache.NotFoundTTL.D())
		// An offline read sees only what is stored: what it did not find
		// is not remembered as a 404.
		if !offline {
			f.Deps.Mem.Set(f.pkgKey(pol, name), &cache.Item{Expires: ix.expires, Value: ix}, 64)
		}
		return &loaded{ix: ix}, nil
	}
	doc := npm.Merge(m.docs)
	if doc.Name == "" {
		doc.Name = name
	}
	repairTags(doc)
	ix.notice = notice(name, m.blocked)
	ix.files = indexFiles(name, doc, m.blocked, m.removed)
	if ix.stale || m.firstErr != nil {
		m.expires = now.Add(f.Deps.Cache.StaleRetry.D())
	}
	ix.expires = m.expires
	if !offline {
		f.Deps.Mem.Set(f.pkgKey(pol, name), &cache.Item{Expires: ix.expires, Value: ix}, ix.cost())
	}
	return &loaded{ix: ix, doc: doc}, nil
}

// askConnectors gets every connector's answer for name at once; name
// rules come before any upstream request.
func (f *Feed) askConnectors(ctx context.Context, pol *Policy, conns []*Connector, name string, offline bool) []connResult {
	results := make([]connResult, len(conns))
	done := make(chan struct{}, len(conns))
	for i, c := range conns {
		go func() {
			defer func() { done <- struct{}{} }()
			if d := pol.PerConnector[i].Name(name); !d.Allowed {
				f.Deps.Metrics.CountFilterBlock(d.Rule)
				results[i] = connResult{notFound: true, blockedName: d.Reason}
				return
			}
			results[i] = f.ReadConnector(ctx, c, i, name, offline)
		}()
	}
	for range conns {
		<-done
	}
	return results
}

// merging is a package's index as the connectors' answers are added to
// it, in priority order.
type merging struct {
	ix       *Index
	expires  time.Time
	docs     []*npm.Packument
	blocked  []blockedVersion
	removed  []removedVersion
	firstErr error
	found    bool
	// h hashes what the result is made from: its fingerprint.
	h *xxhash.Digest
}

// addResult adds one connector's answer, through its policy.
func (f *Feed) addResult(m *merging, pol *filter.Policy, name string, r connResult, now time.Time) {
	switch {
	case r.err != nil:
		m.firstErr = cmpErr(m.firstErr, r.err)
		m.h.WriteString("err;")
	case r.notFound:
		m.h.WriteString("404;")
		if m.ix.blockedName == "" {
			m.ix.blockedName = r.blockedName
		}
	default:
		m.found = true
		hidden, next := applyPolicy(pol, name, r.doc, now)
		m.blocked = append(m.blocked, hidden...)
		for _, b := range hidden {
			f.Deps.Metrics.CountFilterBlock(b.decision.Rule)
		}
		for _, b := range hidden {
			m.h.WriteString(b.v.Version + ",") // a cooldown ending changes the result, not the bytes
		}
		if !next.IsZero() && next.Before(m.expires) {
			m.expires = next
		}
		for _, t := range r.takedowns {
			m.removed = append(m.removed, removedVersion{t})
			m.h.WriteString("-" + t.Version + ",") // an older snapshot read again gives another result
		}
		m.docs = append(m.docs, r.doc)
		m.ix.stale = m.ix.stale || r.stale
		if r.expires.Before(m.expires) {
			m.expires = r.expires
		}
		m.h.Write(strconv.AppendUint(nil, xxhash.Sum64(r.body), 16))
		m.h.WriteString(";")
	}
}

// ParsedDoc returns a package's merged, filtered document, for the rare
// requests that need the document itself rather than a rendering (one
// version, the dist-tags): from the load when it parsed one, else by
// reading the snapshots again. local is the request's reading of the
// local document, or nil.
func (f *Feed) ParsedDoc(ctx context.Context, name string, local *LocalLookup) (*npm.Packument, error) {
	pol := f.Rules.Load()
	ld, err := f.loadIndex(ctx, pol, name, local)
	if err == nil && !ld.ix.notFound && ld.doc == nil {
		// A fresh reading, as before this request's: see renderDoc.
		ld, err = f.mergeSources(ctx, pol, name, true, nil)
	}
	if err != nil {
		return nil, err
	}
	if ld.ix.notFound || ld.doc == nil {
		return nil, ld.ix.notFoundError(name, f.Name)
	}
	return ld.doc, nil
}

// cmpErr keeps the most telling error: a timeout over anything else.
func cmpErr(have, next error) error {
	if have == nil || errors.Is(next, upstream.ErrTimeout) {
		return next
	}
	return have
}

// ReadConnector is one connector's document for name: its snapshot when
// fresh (or offline), else revalidated upstream, the snapshot standing in
// when upstream fails. Versions the connector took down are never in it
// (see Takedown), whichever reading it comes from.
func (f *Feed) ReadConnector(ctx context.Context, c *Connector, idx int, name string, offline bool) connResult {
	key := cache.SnapshotKey(c.Name, name)
	maxAge := f.Deps.Cache.MaxAge.D()
	takedowns := f.takedownsOf(ctx, c.Name, name) // read meanwhile: a round trip to a bucket
	snap, meta, fetched, serr := cache.ReadSnapshot(ctx, f.Deps.Snapshots, key)
	hasSnap := serr == nil
	var tds []Takedown
	fromSnap := func(stale bool) connResult {
		var err error
		if tds, err = takedowns(); err != nil {
			// Without the record an older snapshot could serve a version
			// taken down: refuse rather than guess.
			return connResult{err: err}
		}
		doc, err := npm.Parse(snap, idx)
		if err != nil {
			return connResult{err: err}
		}
		f.sweepTakedowns(c.Name, name, tds)
		withoutTakedowns(doc, tds)
		exp := fetched.Add(maxAge)
		return connResult{doc: doc, body: snap, stale: stale, expires: exp, takedowns: tds}
	}
	if hasSnap && (offline || time.Since(fetched) < maxAge) {
		return fromSnap(false)
	}
	if offline {
		return connResult{notFound: true}
	}
	etag := ""
	if hasSnap {
		etag = meta.ETag
	}
	res, err := c.Client.Packument(ctx, name, etag)
	if err != nil {
		if hasSnap {
			f.Deps.Log.Warn("upstream failed; serving the last snapshot", "connector", c.Name, "package", name, "err", err)
			return fromSnap(true)
		}
		return connResult{err: err}
	}
	switch {
	case res.NotModified && hasSnap:
		if err := f.Deps.Snapshots.Touch(ctx, key); err != nil {
			f.Deps.Log.Warn("snapshot touch failed", "key", key, "err", err)
		}
		fetched = time.Now()
		return fromSnap(false)
	case res.NotModified:
		return connResult{err: fmt.Errorf("%w: 304 to an unconditional request", upstream.ErrBadResponse)}
	case res.NotFound:
		return f.goneUpstream(ctx, c, name, hasSnap)
	}
	doc, err := parseUpstream(c, name, idx, res.Body)
	if err != nil {
		if hasSnap {
			f.Deps.Log.Warn("upstream sent a bad document; serving the last snapshot", "connector", c.Name, "package", name, "err", err)
			return fromSnap(true)
		}
		return connResult{err: err}
	}
	if tds, err = takedowns(); err != nil {
		return connResult{err: err}
	}
	if hasSnap && !bytes.Equal(snap, res.Body) {
		tds = f.noteTakedowns(ctx, c, idx, name, snap, doc, res.Body, tds)
	}
	f.sweepTakedowns(c.Name, name, tds)
	withoutTakedowns(doc, tds)
	// With replicas the snapshot store is asynchronous (cache.AsyncStore):
	// the client does not wait for the bucket, and this replica's re-reads
	// see the snapshot before it lands.
	if err := cache.WriteSnapshot(ctx, f.Deps.Snapshots, key, cache.SnapshotMeta{ETag: res.ETag, LastModified: res.LastModified}, res.Body); err != nil {
		f.Deps.Log.Error("writing snapshot failed", "key", key, "err", err)
	}
	return connResult{doc: doc, body: res.Body, expires: time.Now().Add(maxAge), takedowns: tds}
}

// Known reports whether a lookup of name needs no place under the miss
// limit: the feed asks no connector, or knows the name from its memory,
// a connector's snapshot or a local package.
func (f *Feed) Known(ctx context.Context, pol *Policy, name string, local *LocalLookup) bool {
	if len(f.Connectors) == 0 || f.OwnedScope(name) {
		return true
	}
	if _, ok := f.Deps.Mem.Get(f.pkgKey(pol, name)); ok {
		return true
	}
	for _, c := range f.Connectors {
		if _, err := f.Deps.Snapshots.Stat(ctx, cache.SnapshotKey(c.Name, name)); err == nil {
			return true
		}
	}
	d, err := local.doc(ctx)
	return err == nil && d != nil
}

// MissingVersion says why a document has no such version: a policy hid it
// (403 with the rule, as for its tarball), or there is none (404).
func (f *Feed) MissingVersion(ctx context.Context, name, version string) error {
	pol := f.Rules.Load()
	if ld, err := f.loadIndex(ctx, pol, name, nil); err == nil && ld.ix.files != nil {
		if ref, ok := ld.ix.files[npm.TarballFile(name, version)]; ok && ref.blocked != "" && ref.version == version {
			return fmt.Errorf("%w: %s", ErrBlocked, ref.blocked)
		}
		if ref, ok := ld.ix.files[npm.TarballFile(name, version)]; ok && ref.removed != "" && ref.version == version {
			return fmt.Errorf("%w: %s", ErrVersionNotFound, ref.removed)
		}
	}
	return fmt.Errorf("%w: %s@%s", ErrVersionNotFound, name, version)
}

// SetRules installs a feed's compiled access lists and filters (see
// policy.Compile); requests in flight keep the rules they started with.
func (f *Feed) SetRules(r *policy.Feed) {
	f.rulesMu.Lock()
	defer f.rulesMu.Unlock()
	f.Access.Store(r.Access)
	f.rules = r
	f.Rules.Store(newFeedPolicy(r.Filter, r.Connectors, f.advisories))
}

// SetAdvisories installs an OSV database for the filters' advisory
// rules, as a refresh loaded it; requests in flight keep the one they
// started with, and documents rendered with an older one are not served
// again (its generation is part of the policy's fingerprint).
func (f *Feed) SetAdvisories(a *Advisories) {
	f.rulesMu.Lock()
	defer f.rulesMu.Unlock()
	f.advisories = a
	if f.rules != nil {
		f.Rules.Store(newFeedPolicy(f.rules.Filter, f.rules.Connectors, a))
	}
}
