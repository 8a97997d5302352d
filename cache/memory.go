// Package cache is where npmgate's bytes live: a memory tier of rendered
// documents (ristretto, bounded in bytes) and a disk tier of tarballs and
// upstream snapshots written atomically. It knows nothing of HTTP or npm.
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
}

// Memory is the in-memory tier. It is best effort: a Set may be dropped or
// rejected by the admission policy, so callers always keep a way to
// recompute an entry.
type Memory struct {
	c *ristretto.Cache[string, *Item]
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
	})
	if err != nil {
		return nil, err
	}
	return &Memory{c: c}, nil
}

// Get returns the entry for key.
func (m *Memory) Get(key string) (*Item, bool) { return m.c.Get(key) }

// Set stores it with a cost of its byte size plus extra (for what Value
// holds). It waits until the entry is visible to Get, so that the next
// request finds what a cold one just built.
func (m *Memory) Set(key string, it *Item, extra int64) {
	cost := int64(len(it.Body)+len(it.Gzip)+len(key)+itemOverhead) + extra
	if m.c.Set(key, it, cost) {
		m.c.Wait()
	}
}

// Del drops the entry for key.
func (m *Memory) Del(key string) { m.c.Del(key) }

// Clear drops every item.
func (m *Memory) Clear() { m.c.Clear() }

// Close stops the tier's goroutines.
func (m *Memory) Close() { m.c.Close() }
