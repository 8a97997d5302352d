package feed

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/npmgate/npmgate/cache"
)

// Cache results, as the access log and the X-Npmgate-Cache header say.
const (
	CacheHit         = "hit"
	CacheMiss        = "miss"
	CacheRevalidated = "revalidated"
	CacheStale       = "stale"
)

// Rendered is stored with a Rendered document: the package state it was
// made from.
type Rendered struct {
	fingerprint uint64
	Notice      string
	// Marks are where the base URL the document was rendered for starts,
	// at each tarball URL (see npm.Splice); spliceable is false when the
	// base could not be marked.
	Marks      []int
	Spliceable bool
}

type docResult struct {
	item   *cache.Item
	result string
}

// docKey keys a rendered document: feed, public base URL (which appears in
// every tarball URL), representation and the package's local generation
// never mix. base is the feed mount's canonical base (canonicalBase),
// never one a request chose: one render per document version, whatever
// the Host headers.
func (f *Feed) docKey(pol *Policy, base, name string, abbreviated bool) string {
	v := "full"
	if abbreviated {
		v = "abbr"
	}
	key := "d\x00" + f.Name + "\x00" + pol.fingerprint + "\x00" + base + "\x00" + name + "\x00" + v
	if g := f.Generation(name); g > 0 {
		key += "\x00" + strconv.FormatUint(g, 10)
	}
	return key
}

// RenderedDoc returns the rendered document, from the memory tier when fresh.
// A miss of a name npmgate does not know is subject to the miss limit:
// admit takes its place.
func (f *Feed) RenderedDoc(ctx context.Context, admit AdmitFunc, base, name string, abbreviated bool) (_ *cache.Item, _ string, err error) {
	pol := f.Rules.Load()
	key := f.docKey(pol, base, name, abbreviated)
	it, ok := f.Deps.Mem.Get(key)
	if ok && time.Now().Before(it.Expires) {
		return it, CacheHit, nil
	}
	local := f.LookupLocal(name) // one reading for admit and the load
	if it == nil && !f.Known(ctx, pol, name, local) {
		done, aerr := admit()
		if aerr != nil {
			return nil, "", aerr
		}
		if done != nil {
			defer func() { done(err) }() // err: the named result
		}
	}
	res, err := coalesce(f, ctx, key, func(c context.Context) (docResult, error) {
		return f.renderDoc(c, pol, key, name, base, abbreviated, it, local)
	})
	return res.item, res.result, err
}

// renderDoc makes (or, when the package is unchanged, re-dates) a document.
func (f *Feed) renderDoc(ctx context.Context, pol *Policy, key, name, base string, abbreviated bool, old *cache.Item, local *LocalLookup) (docResult, error) {
	ld, err := f.loadIndex(ctx, pol, name, local)
	if err != nil {
		if old != nil { // upstream gone and the snapshot too: keep serving what we have
			return docResult{old, CacheStale}, nil
		}
		return docResult{}, err
	}
	ix := ld.ix
	if ix.notFound {
		return docResult{}, ix.notFoundError(name, f.Name)
	}
	flags := uint32(0)
	result := CacheMiss
	if ix.stale {
		flags, result = FlagStale, CacheStale
	}
	if old != nil && old.Value.(*Rendered).fingerprint == ix.fingerprint {
		it := *old
		it.Expires, it.Flags = ix.expires, flags
		f.Deps.Mem.Set(key, &it, 0)
		if result == CacheMiss {
			result = CacheRevalidated
		}
		return docResult{&it, result}, nil
	}
	doc := ld.doc
	if doc == nil {
		// The index was fresh in memory but this representation was not:
		// read the snapshots again rather than keep every document parsed.
		// The local document is read afresh here: with replicas the
		// snapshot that was just fetched is written to the bucket in
		// the background, and this reading must not come sooner than
		// it did when every load read the local document itself.
		ld2, err := f.mergeSources(ctx, pol, name, true, nil)
		if err != nil {
			return docResult{}, err
		}
		if ld2.doc == nil {
			return docResult{}, fmt.Errorf("%w: package %q is not in feed %q or its connectors", ErrNotFound, name, f.Name)
		}
		doc, ix = ld2.doc, &Index{fingerprint: ld2.ix.fingerprint, expires: ix.expires, stale: ix.stale, notice: ld2.ix.notice}
	}
	var buf bytes.Buffer
	buf.Grow(doc.SizeHint(base))
	marks, spliceable := doc.RenderMarked(&buf, base, abbreviated)
	f.Deps.Metrics.CountRender(representation(abbreviated))
	body := buf.Bytes()
	it := &cache.Item{
		Body:    body,
		Gzip:    gzipBytes(body),
		ETag:    `"` + strconv.FormatUint(xxhash.Sum64(body), 16) + `"`,
		Expires: ix.expires,
		Value:   &Rendered{fingerprint: ix.fingerprint, Notice: ix.notice, Marks: marks, Spliceable: spliceable},
		Flags:   flags,
		Spill:   true,
	}
	f.Deps.Mem.Set(key, it, 64+8*int64(len(marks)))
	return docResult{it, result}, nil
}

// representation is the metrics label of a document's representation.
func representation(abbreviated bool) string {
	if abbreviated {
		return "abbreviated"
	}
	return "full"
}

// gzipBytes compresses a rendered document once, so that every gzip
// request afterwards is a plain write.
func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(b)/6 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&out)
	zw.Write(b)
	zw.Close()
	zw.Reset(nil)
	gzipWriters.Put(zw)
	return out.Bytes()
}

// gzipWriters are reused: a writer's compression state is about a
// megabyte, and a cold resolve renders a dozen documents at once.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return zw
}}
