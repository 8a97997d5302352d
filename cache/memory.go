package cache

import (
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Item is one memory-tier entry. Items are shared between goroutines and
// must not be modified once stored; replace them instead.
type Item struct {
	Body []byte // identity-encoded bytes, ready to write
	Gzip []byte // the same bytes gzip-compressed, or nil
	ETag string
	// Expires is when the entry must be revalidated against its source.
	Expires time.Time
	// Value carries a structured companion of the bytes (for example an
	// index of a document); the cache only stores it.
	Value any
	// Flags are the owner's; for example whether the entry was stale.
	Flags uint32
	// Spill asks Set to keep a large Body (and Gzip) as files as well, for
	// the front end to send with sendfile (see Memory.SpillTo).
	Spill bool

	// files are the spilled bodies, set by Set before the item is visible
	// and removed from disk when it leaves the tier.
	files *spilled
}

// Memory is the in-memory tier. It is best effort: a Set may be dropped or
// rejected by the admission policy, so callers always keep a way to
// recompute an entry.
type Memory struct {
	c *ristretto.Cache[string, *Item]
	// spillDir and spillMin: see SpillTo.
	spillDir string
	spillMin int
}

// itemOverhead approximates the bookkeeping of one entry beyond its bytes.
const itemOverhead = 256

// NewMemory makes a memory tier holding up to maxBytes of entries.
func NewMemory(maxBytes int64) (*Memory, error) {
	counters := maxBytes / 1024 * 10 // ~10 counters per expected entry of ~1 KiB
	counters = max(10_000, min(counters, 10_000_000))
	c, err := ristretto.NewCache(&ristretto.Config[string, *Item]{
		NumCounters: counters,
		MaxCost:     maxBytes,
		BufferItems: 64,
		// The cost we pass is the real size; ristretto's own per-item
		// estimate would double count.
		IgnoreInternalCost: true,
		// Whatever way an entry leaves (evicted, replaced, deleted,
		// refused admission, cleared), its files go with it. A request
		// that opened one before keeps reading it.
		OnExit: func(it *Item) {
			if it != nil {
				it.files.remove()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &Memory{c: c}, nil
}

// SpillTo makes Set write the bodies of Spill items of at least min bytes
// to files in dir as well. Sending such a body from a file lets the kernel
// pass page-cache pages to the socket (sendfile) instead of copying the
// bytes from the heap for every response; the copy, and the receiver
// reading freshly written memory, cost more than the body's own work on a
// busy server (see BENCHMARKS.md). The files are bounded by the tier's own
// size, and dir must be a directory swept at start (Disk.SpillDir), since a
// crash leaves them behind.
func (m *Memory) SpillTo(dir string, min int) {
	m.spillDir, m.spillMin = dir, min
}

// Get returns the entry for key.
func (m *Memory) Get(key string) (*Item, bool) { return m.c.Get(key) }

// Set stores it with a cost of its byte size plus extra (for what Value
// holds). It waits until the entry is visible to Get, so that the next
// request finds what a cold one just built. it must not be stored already:
// Set writes its files (a copy of a stored item gets files of its own).
func (m *Memory) Set(key string, it *Item, extra int64) {
	it.files = nil
	if it.Spill && m.spillDir != "" && len(it.Body) >= m.spillMin {
		it.files = m.spill(it)
	}
	cost := int64(len(it.Body)+len(it.Gzip)+len(key)+itemOverhead) + extra
	if m.c.Set(key, it, cost) {
		m.c.Wait()
	} else {
		it.files.remove() // dropped before the tier saw it: no OnExit
	}
}

// Del drops the entry for key.
func (m *Memory) Del(key string) { m.c.Del(key) }

// Clear drops every item.
func (m *Memory) Clear() { m.c.Clear() }

// Close stops the tier's goroutines.
func (m *Memory) Close() { m.c.Close() }
