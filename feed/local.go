package feed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/proxy/npm"
)

// SourceLocal marks versions published to the feed itself, in the
// Source field that otherwise indexes the feed's connectors.
const SourceLocal = -1

// LocalDoc is a package published to a feed, as stored on disk.
type LocalDoc struct {
	Packument *LocalPackument `json:"packument"`
	// Published holds every version ever published, with its integrity,
	// and never shrinks: a version once published is never accepted
	// again, even after it was unpublished.
	Published map[string]string `json:"published"`
}

type LocalPackument struct {
	ID          string                     `json:"_id"`
	Rev         string                     `json:"_rev"`
	Name        string                     `json:"name"`
	Description string                     `json:"description,omitempty"`
	DistTags    map[string]string          `json:"dist-tags"`
	Versions    map[string]json.RawMessage `json:"versions"`
	Time        map[string]string          `json:"time"`
	Maintainers []Maintainer               `json:"maintainers"`
	Readme      string                     `json:"readme,omitempty"`
	// Users are the users who starred the package (npm star).
	Users map[string]bool `json:"users,omitempty"`
}

type Maintainer struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// NextRev makes the revision after rev: "N-random", as CouchDB and the
// public registry write them.
func NextRev(rev string) string {
	n := 0
	if i := strings.IndexByte(rev, '-'); i > 0 {
		n, _ = strconv.Atoi(rev[:i])
	}
	b := make([]byte, 8)
	rand.Read(b)
	return strconv.Itoa(n+1) + "-" + hex.EncodeToString(b)
}

// Packages keeps the documents of packages published to feeds: files in
// the data directory on one machine (diskPackages), PostgreSQL when
// replicas share them (pgstore.Packages).
type Packages interface {
	// Get returns feed's document for name, or nil, nil when it has none.
	Get(ctx context.Context, feed, name string) ([]byte, error)
	// Update runs change on the current document (nil when none) and
	// stores what it returns. Two updates of one package never interleave,
	// on this replica or any other, so concurrent publishes all land. An
	// error from change stores nothing and is returned as it is.
	Update(ctx context.Context, feed, name string, change func(old []byte) ([]byte, error)) error
	// Each calls fn with every document of feed, or of all feeds when
	// feed is "".
	Each(ctx context.Context, feed string, fn func(feed, name string, doc []byte) error) error
}

// DiskPackages keeps documents at local/{feed}/{name}.json. Updates of
// one package are serialised by a lock per package: the data directory
// belongs to one process (tools opened beside the server only read it).
type DiskPackages struct {
	Disk  *cache.Disk
	locks sync.Map // feed "\n" name -> *sync.Mutex
}

func (p *DiskPackages) Get(_ context.Context, feed, name string) ([]byte, error) {
	r, _, err := p.Disk.Open(cache.LocalKey(feed, name))
	if errors.Is(err, cache.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func (p *DiskPackages) Update(ctx context.Context, feed, name string, change func([]byte) ([]byte, error)) error {
	mu, _ := p.locks.LoadOrStore(feed+"\n"+name, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	old, err := p.Get(ctx, feed, name)
	if err != nil {
		return err
	}
	doc, err := change(old)
	if err != nil {
		return err
	}
	return p.Disk.Put(ctx, cache.LocalKey(feed, name), bytes.NewReader(doc), int64(len(doc)))
}

func (p *DiskPackages) Each(ctx context.Context, feed string, fn func(feed, name string, doc []byte) error) error {
	prefix := "local/"
	if feed != "" {
		prefix = path.Dir(cache.LocalKey(feed, "x")) + "/"
	}
	return p.Disk.Walk(ctx, prefix, func(info cache.Info) error {
		if !strings.HasSuffix(info.Key, ".json") {
			return nil
		}
		doc, err := p.get(info.Key)
		if err != nil {
			return err
		}
		var head struct {
			Packument struct {
				Name string `json:"name"`
			} `json:"packument"`
		}
		if json.Unmarshal(doc, &head) != nil || head.Packument.Name == "" {
			return fmt.Errorf("local document %s cannot be read", info.Key)
		}
		// Feed names are lower-case letters, digits, '-', '_' and '.':
		// their directory is the name itself.
		feedDir, _, _ := strings.Cut(strings.TrimPrefix(info.Key, "local/"), "/")
		return fn(feedDir, head.Packument.Name, doc)
	})
}

func (p *DiskPackages) get(key string) ([]byte, error) {
	r, _, err := p.Disk.Open(key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// ReadLocal returns the feed's own document for name, or nil.
func (f *Feed) ReadLocal(ctx context.Context, name string) (*LocalDoc, error) {
	raw, err := f.Deps.Packages.Get(ctx, f.Name, name)
	if err != nil || raw == nil {
		return nil, err
	}
	return DecodeLocal(name, raw)
}

// LocalLookup reads a package's local document at most once for one
// request: the miss limit, the prefetch and the load of a cold miss all
// need it, and with a database each reading is a query.
type LocalLookup struct {
	f    *Feed
	name string
	read bool
	d    *LocalDoc
	err  error
}

// LookupLocal starts the one reading of name's local document for a
// request; nothing is read until doc is called.
func (f *Feed) LookupLocal(name string) *LocalLookup {
	return &LocalLookup{f: f, name: name}
}

// doc returns the local document (nil when there is none), reading it on
// the first call, under the caller's ctx.
func (l *LocalLookup) doc(ctx context.Context) (*LocalDoc, error) {
	if !l.read {
		l.d, l.err = l.f.ReadLocal(ctx, l.name)
		l.read = true
	}
	return l.d, l.err
}

func DecodeLocal(name string, raw []byte) (*LocalDoc, error) {
	var d LocalDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("local document of %s: %w", name, err)
	}
	if d.Published == nil {
		d.Published = map[string]string{}
	}
	if d.Packument != nil && len(d.Packument.Maintainers) == 0 {
		// Documents written before packages had owners: the publisher of
		// the first stored version owns the package. Every store decodes
		// here, so disk and database documents migrate alike.
		d.Packument.Maintainers = firstPublisher(d.Packument)
	}
	return &d, nil
}

// firstPublisher returns the _npmUser (which the server set), else the
// maintainers, of the earliest stored version by publish time.
func firstPublisher(lp *LocalPackument) []Maintainer {
	first := ""
	for v := range lp.Versions {
		if first == "" || lp.Time[v] < lp.Time[first] || lp.Time[v] == lp.Time[first] && v < first {
			first = v
		}
	}
	if first == "" {
		return nil
	}
	var ver struct {
		NpmUser     Maintainer   `json:"_npmUser"`
		Maintainers []Maintainer `json:"maintainers"`
	}
	json.Unmarshal(lp.Versions[first], &ver)
	if ver.NpmUser.Name != "" {
		return []Maintainer{{Name: ver.NpmUser.Name}}
	}
	var ms []Maintainer
	for _, m := range ver.Maintainers {
		if m.Name != "" {
			ms = append(ms, Maintainer{Name: m.Name})
		}
	}
	return ms
}

// UpdateLocal applies change to the package's document (nil when it has
// none) under the package's lock, stores the result and makes what the
// memory tier holds of the package stale at once. Other replicas learn
// of it from the store (see Server.watchPackages).
func (f *Feed) UpdateLocal(ctx context.Context, name string, change func(d *LocalDoc) (*LocalDoc, error)) error {
	err := f.Deps.Packages.Update(ctx, f.Name, name, func(old []byte) ([]byte, error) {
		var d *LocalDoc
		if old != nil {
			var err error
			if d, err = DecodeLocal(name, old); err != nil {
				return nil, err
			}
		}
		d, err := change(d)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	})
	if err != nil {
		return err
	}
	f.Invalidate(name)
	return nil
}

// Invalidate drops what the memory tier holds for a package. The index is
// deleted; rendered documents are keyed by the package's generation, which
// moves on, so every variant (each public URL, full and abbreviated) is
// missed at once.
func (f *Feed) Invalidate(name string) {
	g, _ := f.gens.LoadOrStore(name, new(atomic.Uint64))
	g.(*atomic.Uint64).Add(1)
	f.Deps.Mem.Del(f.pkgKey(f.Rules.Load(), name))
}

func (f *Feed) Generation(name string) uint64 {
	if g, ok := f.gens.Load(name); ok {
		return g.(*atomic.Uint64).Load()
	}
	return 0
}

// AsPackument parses the local document as a packument for merging.
func (d *LocalDoc) AsPackument() (*npm.Packument, []byte, error) {
	raw, err := json.Marshal(d.Packument)
	if err != nil {
		return nil, nil, err
	}
	p, err := npm.Parse(raw, SourceLocal)
	return p, raw, err
}

// OwnedScope reports whether name is in one of the feed's owned scopes.
func (f *Feed) OwnedScope(name string) bool {
	scope, _, scoped := npm.SplitScope(name)
	if !scoped {
		return false
	}
	for _, s := range f.OwnedScopes {
		if s == "@"+scope {
			return true
		}
	}
	return false
}

// Claimed reports whether name belongs to the feed alone by
// configuration (owned_scopes, owned_names): it is never requested from a
// connector, and anyone with publish rights may publish it first.
func (f *Feed) Claimed(name string) bool {
	return f.OwnedScope(name) || matchNames(f.OwnedNames, name)
}

// LocalOnly reports whether name is never asked of a connector, not even
// for a 404: it is claimed by configuration, or it has local versions and
// is not on the feed's merge list. local is its local document, or nil.
func (f *Feed) LocalOnly(name string, local *LocalDoc) bool {
	return f.Claimed(name) || (local != nil && !f.Merged(name))
}

// Merged reports whether name's local and connector versions mix.
func (f *Feed) Merged(name string) bool {
	return matchNames(f.MergeNames, name)
}

// matchNames reports whether name is one of names, where an entry ending
// in * is a prefix.
func matchNames(names []string, name string) bool {
	for _, m := range names {
		if prefix, ok := strings.CutSuffix(m, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if m == name {
			return true
		}
	}
	return false
}
