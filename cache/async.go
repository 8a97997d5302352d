package cache

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AsyncStore is a Store whose Put returns as soon as it has the bytes and
// writes them in the background: a snapshot in hand need not wait for a
// round trip to the bucket, which only spares a later upstream request.
// Until a write lands, Get, Stat and Walk of this store see it, so a
// re-read right after a Put never misses it (it would answer a 404 for a
// package just fetched). Writes of one key land in the order of their
// Puts; a Put superseded before its turn is not written at all.
//
// Writes are bounded: Writers at a time, each key queued to one of them,
// at most Queue waiting per writer and MaxBytes held in all. A Put over
// these limits writes synchronously, as the store beneath would (counted
// in AsyncStats.Sync): nothing is dropped.
type AsyncStore struct {
	inner   Store
	log     *slog.Logger
	timeout time.Duration
	seed    maphash.Seed
	shards  []*asyncShard

	mu       sync.Mutex
	idle     *sync.Cond // signalled when queued reaches 0
	pending  map[string]*asyncWrite
	bytes    int64 // held by pending
	maxBytes int64
	queued   int // writes queued or running
	closed   bool
	workers  sync.WaitGroup

	written, failed, sync atomic.Uint64
}

// asyncShard is one writer: its queue, and a lock held while it writes,
// which a synchronous write of one of its keys takes too.
type asyncShard struct {
	queue   chan *asyncWrite
	writing sync.Mutex
}

// asyncWrite is one Put on its way.
type asyncWrite struct {
	key  string
	data []byte
	at   time.Time
	ctx  context.Context // the Put's values, without its cancellation
}

// AsyncOptions tunes an AsyncStore.
type AsyncOptions struct {
	Writers  int          // background writers; 0 means 4
	Queue    int          // writes waiting per writer; 0 means 64
	MaxBytes int64        // bytes held by writes not landed; 0 means 256 MiB
	Log      *slog.Logger // failed background writes; nil discards them
	// WriteTimeout bounds one write to the store beneath, so that a hung
	// bucket cannot stall a writer for good; 0 means 5 minutes.
	WriteTimeout time.Duration
}

// AsyncStats counts an AsyncStore's writes.
type AsyncStats struct {
	Written uint64 // background writes that landed
	Failed  uint64 // background writes that failed (logged; the key keeps its old object)
	Sync    uint64 // Puts written synchronously: the queue or the byte limit was full
}

// NewAsyncStore puts inner behind a write queue and starts its writers;
// Close flushes and stops them.
func NewAsyncStore(inner Store, opt AsyncOptions) *AsyncStore {
	if opt.Writers <= 0 {
		opt.Writers = 4
	}
	if opt.Queue <= 0 {
		opt.Queue = 64
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = 256 << 20
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = 5 * time.Minute
	}
	a := &AsyncStore{inner: inner, log: opt.Log, timeout: opt.WriteTimeout, seed: maphash.MakeSeed(), pending: map[string]*asyncWrite{}, maxBytes: opt.MaxBytes}
	a.idle = sync.NewCond(&a.mu)
	for range opt.Writers {
		sh := &asyncShard{queue: make(chan *asyncWrite, opt.Queue)}
		a.shards = append(a.shards, sh)
		a.workers.Go(func() { a.writer(sh) })
	}
	return a
}

func (a *AsyncStore) shard(key string) *asyncShard {
	return a.shards[maphash.String(a.seed, key)%uint64(len(a.shards))]
}

// Put reads r whole (a reader that fails, a context cancelled or a size
// that does not match fail the Put here, as in any Store), then queues
// the write and returns.
func (a *AsyncStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	var buf bytes.Buffer
	if size > 0 {
		buf.Grow(int(min(size, 64<<20)))
	}
	n, err := buf.ReadFrom(ctxReader{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("cache: %s: got %d bytes, expected %d", key, n, size)
	}
	if err != nil {
		return err
	}
	w := &asyncWrite{key: key, data: buf.Bytes(), at: time.Now(), ctx: context.WithoutCancel(ctx)}
	sh := a.shard(key)
	a.mu.Lock()
	a.hold(w)
	queued := false
	if !a.closed && a.bytes <= a.maxBytes {
		select {
		case sh.queue <- w: // never blocks: under mu, Close cannot close it meanwhile
			a.queued++
			queued = true
		default:
		}
	}
	a.mu.Unlock()
	if queued {
		return nil
	}
	a.sync.Add(1)
	sh.writing.Lock()
	defer sh.writing.Unlock()
	_, err = a.land(w)
	return err
}

// hold makes w what readers see of its key. Called with mu held.
func (a *AsyncStore) hold(w *asyncWrite) {
	if old := a.pending[w.key]; old != nil {
		a.bytes -= int64(len(old.data))
	}
	a.pending[w.key] = w
	a.bytes += int64(len(w.data))
}

// current reports whether w is still the latest Put of its key and not
// written yet.
func (a *AsyncStore) current(w *asyncWrite) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[w.key] == w
}

// land writes w if it is still current (else it was superseded by a
// later Put, or removed, and wrote is false), then stops holding it.
// Called with w's shard's writing lock held, so writes of one key never
// overlap.
func (a *AsyncStore) land(w *asyncWrite) (wrote bool, err error) {
	if !a.current(w) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(w.ctx, a.timeout)
	defer cancel()
	err = a.inner.Put(ctx, w.key, bytes.NewReader(w.data), int64(len(w.data)))
	a.mu.Lock()
	if a.pending[w.key] == w {
		delete(a.pending, w.key)
		a.bytes -= int64(len(w.data))
	}
	a.mu.Unlock()
	return true, err
}

func (a *AsyncStore) writer(sh *asyncShard) {
	for w := range sh.queue {
		sh.writing.Lock()
		wrote, err := a.land(w)
		sh.writing.Unlock()
		switch {
		case err != nil:
			a.failed.Add(1)
			a.log.Error("store: background write failed", "key", w.key, "err", err)
		case wrote:
			a.written.Add(1)
		}
		a.mu.Lock()
		if a.queued--; a.queued == 0 {
			a.idle.Broadcast()
		}
		a.mu.Unlock()
	}
}

// held is the write of key not landed yet, if any.
func (a *AsyncStore) held(key string) *asyncWrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[key]
}

// Get implements Store: a write not landed yet is read from memory.
func (a *AsyncStore) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if w := a.held(key); w != nil {
		return io.NopCloser(bytes.NewReader(w.data)), w.info(), nil
	}
	return a.inner.Get(ctx, key)
}

func (w *asyncWrite) info() Info {
	return Info{Key: w.key, Size: int64(len(w.data)), ModTime: w.at}
}

// Stat implements Store.
func (a *AsyncStore) Stat(ctx context.Context, key string) (Info, error) {
	if w := a.held(key); w != nil {
		return w.info(), nil
	}
	return a.inner.Stat(ctx, key)
}

// settle runs op on the store beneath once key's writes have landed: a
// write still held is written first, synchronously.
func (a *AsyncStore) settle(key string, op func() error) error {
	sh := a.shard(key)
	sh.writing.Lock()
	defer sh.writing.Unlock()
	if w := a.held(key); w != nil {
		if _, err := a.land(w); err != nil {
			return err
		}
	}
	return op()
}

// Touch implements Store, after key's pending write has landed.
func (a *AsyncStore) Touch(ctx context.Context, key string) error {
	return a.settle(key, func() error { return a.inner.Touch(ctx, key) })
}

// Remove implements Store: a pending write of key is discarded, one being
// written is waited for, then the stored object is removed.
func (a *AsyncStore) Remove(ctx context.Context, key string) error {
	sh := a.shard(key)
	a.mu.Lock()
	if w := a.pending[key]; w != nil {
		delete(a.pending, key)
		a.bytes -= int64(len(w.data))
	}
	a.mu.Unlock()
	sh.writing.Lock() // a write of key under way ends first
	defer sh.writing.Unlock()
	return a.inner.Remove(ctx, key)
}

// Walk implements Store: the stored objects, with the pending writes
// standing in for (or added to) them.
func (a *AsyncStore) Walk(ctx context.Context, prefix string, fn func(Info) error) error {
	a.mu.Lock()
	held := make(map[string]Info, len(a.pending))
	for k, w := range a.pending {
		if strings.HasPrefix(k, prefix) {
			held[k] = w.info()
		}
	}
	a.mu.Unlock()
	err := a.inner.Walk(ctx, prefix, func(info Info) error {
		if h, ok := held[info.Key]; ok {
			delete(held, info.Key)
			info = h
		}
		return fn(info)
	})
	if err != nil {
		return err
	}
	for _, info := range held {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Check implements Store.
func (a *AsyncStore) Check(ctx context.Context) error { return a.inner.Check(ctx) }

// Stats counts the writes so far, for metrics.
func (a *AsyncStore) Stats() AsyncStats {
	return AsyncStats{Written: a.written.Load(), Failed: a.failed.Load(), Sync: a.sync.Load()}
}

// Flush waits until every write queued so far has landed (or failed), or
// ctx ends.
func (a *AsyncStore) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		a.mu.Lock()
		a.idle.Broadcast()
		a.mu.Unlock()
	})
	defer stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.queued > 0 && ctx.Err() == nil {
		a.idle.Wait()
	}
	if a.queued > 0 {
		return ctx.Err()
	}
	return nil
}

// Close lands the queued writes and stops the writers; a Put after Close
// writes synchronously.
func (a *AsyncStore) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		for _, sh := range a.shards {
			close(sh.queue)
		}
	}
	a.mu.Unlock()
	a.workers.Wait()
	return nil
}

var _ Store = (*AsyncStore)(nil)
