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
// writes the snapshot again.
type AsyncStore struct {
	Store
	log        *slog.Logger
	maxPending int64

	mu      sync.Mutex
	pending map[string]*asyncWrite
	bytes   int64
	wg      sync.WaitGroup
	// keyLocks order the writes of one key: a newer one never lands
	// before an older one still writing (striped by the key's hash).
	keyLocks [64]sync.Mutex
}

type asyncWrite struct {
	data []byte
	at   time.Time
}

// asyncWriteTimeout bounds one background write.
const asyncWriteTimeout = 5 * time.Minute

// NewAsyncStore writes to st in the background, holding at most
// maxPending bytes that are not written yet.
func NewAsyncStore(st Store, maxPending int64, log *slog.Logger) *AsyncStore {
	return &AsyncStore{Store: st, log: log, maxPending: maxPending, pending: map[string]*asyncWrite{}}
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
	if a.bytes+int64(len(data)) > a.maxPending {
		a.mu.Unlock()
		return a.Store.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
	}
	if old := a.pending[key]; old != nil {
		a.bytes -= int64(len(old.data))
	}
	a.pending[key] = w
	a.bytes += int64(len(data))
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		lock := &a.keyLocks[xxhash.Sum64String(key)%uint64(len(a.keyLocks))]
		lock.Lock()
		defer lock.Unlock()
		if a.waiting(key) == w { // else a newer write of the key will land
			// Not the caller's context: that ends when its request does.
			wctx, cancel := context.WithTimeout(context.Background(), asyncWriteTimeout)
			if err := a.Store.Put(wctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
				a.log.Error("writing to the shared store failed", "key", key, "err", err)
			}
			cancel()
		}
		a.mu.Lock()
		if a.pending[key] == w { // not replaced by a newer write meanwhile
			delete(a.pending, key)
			a.bytes -= int64(len(data))
		}
		a.mu.Unlock()
	}()
	return nil
}

// waiting returns the write of key not yet landed, if any.
func (a *AsyncStore) waiting(key string) *asyncWrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[key]
}

func (a *AsyncStore) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if w := a.waiting(key); w != nil {
		return io.NopCloser(bytes.NewReader(w.data)), Info{Key: key, Size: int64(len(w.data)), ModTime: w.at}, nil
	}
	return a.Store.Get(ctx, key)
}

func (a *AsyncStore) Stat(ctx context.Context, key string) (Info, error) {
	if w := a.waiting(key); w != nil {
		return Info{Key: key, Size: int64(len(w.data)), ModTime: w.at}, nil
	}
	return a.Store.Stat(ctx, key)
}

// Touch marks a write still in flight as fresh too.
func (a *AsyncStore) Touch(ctx context.Context, key string) error {
	a.mu.Lock()
	if w := a.pending[key]; w != nil {
		w.at = time.Now()
		a.mu.Unlock()
		return nil
	}
	a.mu.Unlock()
	return a.Store.Touch(ctx, key)
}

// Remove forgets a write still in flight, then removes the object.
func (a *AsyncStore) Remove(ctx context.Context, key string) error {
	a.mu.Lock()
	if w := a.pending[key]; w != nil {
		delete(a.pending, key)
		a.bytes -= int64(len(w.data))
	}
	a.mu.Unlock()
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

// Flush waits for the writes in flight (at shutdown, and in tests).
func (a *AsyncStore) Flush() { a.wg.Wait() }
