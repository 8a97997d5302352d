package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/proxy/npm"
)

// sourceLocal marks versions published to the feed itself, in the
// Source field that otherwise indexes the feed's connectors.
const sourceLocal = -1

// localDoc is a package published to a feed, as stored on disk.
type localDoc struct {
	Packument *localPackument `json:"packument"`
	// Published holds every version ever published, with its integrity,
	// and never shrinks: a version once published is never accepted
	// again, even after it was unpublished.
	Published map[string]string `json:"published"`
}

type localPackument struct {
	ID          string                     `json:"_id"`
	Rev         string                     `json:"_rev"`
	Name        string                     `json:"name"`
	Description string                     `json:"description,omitempty"`
	DistTags    map[string]string          `json:"dist-tags"`
	Versions    map[string]json.RawMessage `json:"versions"`
	Time        map[string]string          `json:"time"`
	Maintainers []maintainer               `json:"maintainers"`
	Readme      string                     `json:"readme,omitempty"`
}

type maintainer struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// nextRev makes the revision after rev: "N-random", as CouchDB and the
// public registry write them.
func nextRev(rev string) string {
	n := 0
	if i := strings.IndexByte(rev, '-'); i > 0 {
		n, _ = strconv.Atoi(rev[:i])
	}
	b := make([]byte, 8)
	rand.Read(b)
	return strconv.Itoa(n+1) + "-" + hex.EncodeToString(b)
}

// locks serialises read-modify-write of one package's document, so
// concurrent publishes of different versions all land.
type locks struct{ m sync.Map }

func (l *locks) lock(key string) func() {
	mu, _ := l.m.LoadOrStore(key, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// readLocal returns the feed's own document for name, or nil.
func (f *feed) readLocal(name string) (*localDoc, error) {
	r, _, err := f.s.disk.Open(cache.LocalKey(f.name, name))
	if errors.Is(err, cache.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var d localDoc
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return nil, fmt.Errorf("local document of %s: %w", name, err)
	}
	if d.Published == nil {
		d.Published = map[string]string{}
	}
	return &d, nil
}

// writeLocal replaces the document atomically and makes every replica of
// it in memory stale at once.
func (f *feed) writeLocal(name string, d *localDoc) error {
	err := f.s.disk.WriteFile(cache.LocalKey(f.name, name), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(d)
	})
	if err != nil {
		return err
	}
	f.invalidate(name)
	return nil
}

// invalidate drops what the memory tier holds for a package. The index is
// deleted; rendered documents are keyed by the package's generation, which
// moves on, so every variant (each public URL, full and abbreviated) is
// missed at once.
func (f *feed) invalidate(name string) {
	g, _ := f.gens.LoadOrStore(name, new(atomic.Uint64))
	g.(*atomic.Uint64).Add(1)
	f.s.mem.Del(f.pkgKey(f.pol.Load(), name))
}

func (f *feed) generation(name string) uint64 {
	if g, ok := f.gens.Load(name); ok {
		return g.(*atomic.Uint64).Load()
	}
	return 0
}

// localParsed renders the local document as a packument for merging.
func (d *localDoc) parsed() (*npm.Packument, []byte, error) {
	raw, err := json.Marshal(d.Packument)
	if err != nil {
		return nil, nil, err
	}
	p, err := npm.Parse(raw, sourceLocal)
	return p, raw, err
}

// ownedScope reports whether name is in one of the feed's owned scopes.
func (f *feed) ownedScope(name string) bool {
	scope, _, scoped := npm.SplitScope(name)
	if !scoped {
		return false
	}
	for _, s := range f.ownedScopes {
		if s == "@"+scope {
			return true
		}
	}
	return false
}

// merged reports whether name's local and connector versions mix.
func (f *feed) merged(name string) bool {
	for _, m := range f.mergeNames {
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
