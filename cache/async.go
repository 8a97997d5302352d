package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// AsyncStore is a Store whose writes the caller need not wait for: Put
// takes the bytes and returns, and the write to the store below runs in
// the background. Until it lands, Get and Stat of the key answer from the
// bytes in hand, so this process never reads an older object (or none)
// right after writing one. It suits upstream snapshots in a bucket: the
// document is in hand, and the snapshot only spares a later upstream
// request.
//
// The bytes waiting are bounded (maxPending); past it, Put writes
// synchronously. A write that fails is logged and dropped: the next fetch
// writes the snapshot again. The writes of one key land in the order of
// their Puts, a synchronous one included, and Remove and Touch come after
// a write of the key already under way.
type AsyncStore struct {
	Store
	log        *slog.Logger
	maxPending int64

	mu      sync.Mutex
	pending map[string]*asyncWrite
	bytes   int64
	// inflight counts the background writes not finished; idle is
	// signalled when it reaches 0 (Flush). A WaitGroup would not do:
	// Flush may run while Puts come in.
	inflight int
	idle     *sync.Cond
	// landed maps a key written here to the store's time of the object
	// written and the time of its Put, which readers keep seeing: the
	// object's time must not move when its write lands (a snapshot's
	// time is when it was fetched). Bounded: cleared when full, after
	// which the store's own time shows.
	landed map[string]landedWrite
	// keyLocks order the writes of one key: a newer one never lands
	// before an older one still writing (striped by the key's hash).
	keyLocks [64]sync.Mutex
}

type landedWrite struct{ stored, at time.Time }

// maxLanded bounds AsyncStore.landed.
const maxLanded = 4096

type asyncWrite struct {
	data []byte
	at   time.Time // guarded by AsyncStore.mu (Touch moves it)
}

// asyncWriteTimeout bounds one background write.
const asyncWriteTimeout = 5 * time.Minute

// NewAsyncStore writes to st in the background, holding at most
// maxPending bytes that are not written yet.
func NewAsyncStore(st Store, maxPending int64, log *slog.Logger) *AsyncStore {
	a := &AsyncStore{Store: st, log: log, maxPending: maxPending, pending: map[string]*asyncWrite{}, landed: map[string]landedWrite{}}
	a.idle = sync.NewCond(&a.mu)
	return a
}

// keyLock is held while a write of key lands, and by Remove and Touch,
// so that they happen in order.
func (a *AsyncStore) keyLock(key string) *sync.Mutex {
	return &a.keyLocks[xxhash.Sum64String(key)%uint64(len(a.keyLocks))]
}

// hold makes w what readers see of key. Called with mu held.
func (a *AsyncStore) hold(key string, w *asyncWrite) {
	if old := a.pending[key]; old != nil {
		a.bytes -= int64(len(old.data))
	}
	a.pending[key] = w
	a.bytes += int64(len(w.data))
}

// land writes w below if it is still what readers see of key (else a newer
// write will land, or the key was removed), then stops holding it. Called
// with key's lock held.
func (a *AsyncStore) land(ctx context.Context, key string, w *asyncWrite) error {
	var err error
	var stored time.Time
	if a.waiting(key) == w {
		err = a.Store.Put(ctx, key, bytes.NewReader(w.data), int64(len(w.data)))
		if err == nil {
			if info, serr := a.Store.Stat(ctx, key); serr == nil {
				stored = info.ModTime
			}
		}
	}
	a.mu.Lock()
	if a.pending[key] == w { // not replaced by a newer write meanwhile
		delete(a.pending, key)
		a.bytes -= int64(len(w.data))
		if !stored.IsZero() {
			if len(a.landed) >= maxLanded {
				clear(a.landed)
			}
			a.landed[key] = landedWrite{stored: stored, at: w.at}
		}
	}
	a.mu.Unlock()
	return err
}

// modTime is the time to report for key's object whose store time is
// stored: its Put's when it is the object written here.
func (a *AsyncStore) modTime(key string, stored time.Time) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.landed[key]; ok && l.stored.Equal(stored) {
		return l.at
	}
	return stored
}

// forget drops what landed knows of key: it was touched or removed.
func (a *AsyncStore) forget(key string) {
	a.mu.Lock()
	delete(a.landed, key)
	a.mu.Unlock()
}

func (a *AsyncStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	data, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // a cancelled Put leaves nothing, as in every Store
	}
	if size >= 0 && int64(len(data)) != size {
		return fmt.Errorf("cache: %s: got %d bytes, announced %d", key, len(data), size)
	}
	w := &asyncWrite{data: data, at: time.Now()}
	a.mu.Lock()
	direct := a.bytes+int64(len(data)) > a.maxPending
	// Held even when written synchronously: readers see these bytes from
	// now on, not those of an older write of the key still in flight,
	// which then does not land over them.
	a.hold(key, w)
	if !direct {
		a.inflight++
	}
	a.mu.Unlock()
	lock := a.keyLock(key)
	if direct {
		lock.Lock() // after the older write under way, if any
		defer lock.Unlock()
		return a.land(ctx, key, w)
	}
	go func() {
		defer a.finished()
		lock.Lock()
		defer lock.Unlock()
		// Not the caller's context: that ends when its request does.
		wctx, cancel := context.WithTimeout(context.Background(), asyncWriteTimeout)
		defer cancel()
		if err := a.land(wctx, key, w); err != nil {
			a.log.Error("writing to the shared store failed", "key", key, "err", err)
		}
	}()
	return nil
}

// finished counts a background write out.
func (a *AsyncStore) finished() {
	a.mu.Lock()
	if a.inflight--; a.inflight == 0 {
		a.idle.Broadcast()
	}
	a.mu.Unlock()
}

// waiting returns the write of key not yet landed, if any.
func (a *AsyncStore) waiting(key string) *asyncWrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[key]
}

// held is the bytes and Info of key's write not landed yet, read under
// the lock (Touch moves its time).
func (a *AsyncStore) held(key string) ([]byte, Info, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.pending[key]
	if w == nil {
		return nil, Info{}, false
	}
	return w.data, Info{Key: key, Size: int64(len(w.data)), ModTime: w.at}, true
}

func (a *AsyncStore) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if data, info, ok := a.held(key); ok {
		return io.NopCloser(bytes.NewReader(data)), info, nil
	}
	r, info, err := a.Store.Get(ctx, key)
	if err == nil {
		info.ModTime = a.modTime(key, info.ModTime)
	}
	return r, info, err
}

func (a *AsyncStore) Stat(ctx context.Context, key string) (Info, error) {
	if _, info, ok := a.held(key); ok {
		return info, nil
	}
	info, err := a.Store.Stat(ctx, key)
	if err == nil {
		info.ModTime = a.modTime(key, info.ModTime)
	}
	return info, err
}

// Touch marks a write still in flight as fresh too (it lands with a
// newer time anyway); else it touches the object, after a write of the
// key under way.
func (a *AsyncStore) Touch(ctx context.Context, key string) error {
	a.mu.Lock()
	if w := a.pending[key]; w != nil {
		w.at = time.Now()
		a.mu.Unlock()
		return nil
	}
	a.mu.Unlock()
	lock := a.keyLock(key)
	lock.Lock()
	defer lock.Unlock()
	a.forget(key)
	return a.Store.Touch(ctx, key)
}

// Remove forgets a write still in flight, waits for one under way to
// land, then removes the object, so that nothing brings it back after.
func (a *AsyncStore) Remove(ctx context.Context, key string) error {
	a.mu.Lock()
	if w := a.pending[key]; w != nil {
		delete(a.pending, key)
		a.bytes -= int64(len(w.data))
	}
	a.mu.Unlock()
	lock := a.keyLock(key)
	lock.Lock()
	defer lock.Unlock()
	a.forget(key)
	return a.Store.Remove(ctx, key)
}

// Walk walks the store below and the writes still in flight, each key
// once.
func (a *AsyncStore) Walk(ctx context.Context, prefix string, fn func(Info) error) error {
	a.mu.Lock()
	waiting := make(map[string]Info, len(a.pending))
	for key, w := range a.pending {
		if strings.HasPrefix(key, prefix) {
			waiting[key] = Info{Key: key, Size: int64(len(w.data)), ModTime: w.at}
		}
	}
	a.mu.Unlock()
	err := a.Store.Walk(ctx, prefix, func(info Info) error {
		if _, ok := waiting[info.Key]; ok {
			return nil // the newer bytes are those in flight
		}
		info.ModTime = a.modTime(info.Key, info.ModTime)
		return fn(info)
	})
	if err != nil {
		return err
	}
	for _, info := range waiting {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Flush waits for the writes in flight (at shutdown, and in tests),
// those of Puts made meanwhile included.
func (a *AsyncStore) Flush() {
	a.mu.Lock()
	for a.inflight > 0 {
		a.idle.Wait()
	}
	a.mu.Unlock()
}
