package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// putReturns runs a Put and fails the test if it has not returned once
// the store beneath is known to be stuck (the deadline only guards
// against a hang; it measures nothing).
func putReturns(t *testing.T, a *AsyncStore, key string, data []byte) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Put %s: %v", key, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Put %s waited for the store beneath", key)
	}
}

// TestAsyncStoreReadsSeeWritesInFlight: a Put returns while the store
// beneath is still writing; Get, Stat and Walk see the new object at once;
// Flush returns only once it has landed.
func TestAsyncStoreReadsSeeWritesInFlight(t *testing.T) {
	inner := newFakeBucket(t)
	inner.entered, inner.gate = make(chan string, 1), make(chan struct{})
	a := NewAsyncStore(inner, AsyncOptions{})
	defer a.Close()
	const key = "snapshots/npmjs/left-pad.json"
	doc := []byte(`{"name":"left-pad"}`)
	putReturns(t, a, key, doc)
	<-inner.entered // the write is under way, and held
	if got := stored(t, a, key); !bytes.Equal(got, doc) {
		t.Errorf("Get during the write: %q", got)
	}
	if info, err := a.Stat(t.Context(), key); err != nil || info.Size != int64(len(doc)) {
		t.Errorf("Stat during the write: %+v, %v", info, err)
	}
	var walked []string
	a.Walk(t.Context(), "snapshots/", func(info Info) error { walked = append(walked, info.Key); return nil })
	if len(walked) != 1 || walked[0] != key {
		t.Errorf("Walk during the write: %v", walked)
	}
	if stored(t, inner.Disk, key) != nil {
		t.Fatal("the write landed while the store beneath was held")
	}
	flushed := make(chan error, 1)
	go func() { flushed <- a.Flush(t.Context()) }()
	close(inner.gate)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if got := stored(t, inner.Disk, key); !bytes.Equal(got, doc) {
		t.Errorf("after Flush the store beneath holds %q", got)
	}
	if st := a.Stats(); st != (AsyncStats{Written: 1}) {
		t.Errorf("stats %+v", st)
	}
}

// TestAsyncStoreOverflowWritesSynchronously: one writer with a queue of
// one: while it writes and one waits, the next Put writes itself (and
// is counted); every object lands, the last Put of a key winning.
func TestAsyncStoreOverflowWritesSynchronously(t *testing.T) {
	inner := newFakeBucket(t)
	inner.entered, inner.gate = make(chan string, 10), make(chan struct{})
	a := NewAsyncStore(inner, AsyncOptions{Writers: 1, Queue: 1})
	defer a.Close()
	putReturns(t, a, "snapshots/a", []byte("a1"))
	<-inner.entered // the writer holds a
	putReturns(t, a, "snapshots/b", []byte("b1"))
	sync := make(chan error, 1)
	go func() { sync <- a.Put(t.Context(), "snapshots/c", bytes.NewReader([]byte("c1")), 2) }()
	close(inner.gate)
	if err := <-sync; err != nil {
		t.Fatal(err)
	}
	putReturns(t, a, "snapshots/a", []byte("a2"))
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"snapshots/a": "a2", "snapshots/b": "b1", "snapshots/c": "c1"} {
		if got := stored(t, inner.Disk, key); string(got) != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	if st := a.Stats(); st.Sync != 1 || st.Failed != 0 {
		t.Errorf("stats %+v, want one synchronous write", st)
	}
}

// TestAsyncStoreFailedWrite: a background write that fails is counted,
// and readers then see the object as it was.
func TestAsyncStoreFailedWrite(t *testing.T) {
	inner := newFakeBucket(t)
	a := NewAsyncStore(inner, AsyncOptions{})
	defer a.Close()
	const key = "snapshots/x"
	putReturns(t, a, key, []byte("old"))
	a.Flush(t.Context())
	inner.mu.Lock()
	inner.putErr = errors.New("bucket unreachable")
	inner.mu.Unlock()
	putReturns(t, a, key, []byte("new"))
	a.Flush(t.Context())
	if got := stored(t, a, key); string(got) != "old" {
		t.Errorf("after a failed write: %q, want the old object", got)
	}
	if st := a.Stats(); st != (AsyncStats{Written: 1, Failed: 1}) {
		t.Errorf("stats %+v", st)
	}
}

// TestAsyncStoreRemoveAndTouchSettleFirst: Remove drops a write not yet
// landed (it never lands after), Touch of one lands it first.
func TestAsyncStoreRemoveAndTouchSettleFirst(t *testing.T) {
	inner := newFakeBucket(t)
	inner.entered, inner.gate = make(chan string, 10), make(chan struct{})
	a := NewAsyncStore(inner, AsyncOptions{Writers: 1})
	defer a.Close()
	putReturns(t, a, "snapshots/busy", []byte("x"))
	<-inner.entered // the one writer is held: what follows waits in its queue
	putReturns(t, a, "snapshots/removed", []byte("gone"))
	putReturns(t, a, "snapshots/touched", []byte("kept"))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Remove(context.Background(), "snapshots/removed"); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	wg.Go(func() {
		if err := a.Touch(context.Background(), "snapshots/touched"); err != nil {
			t.Errorf("Touch of a write not landed: %v", err)
		}
	})
	close(inner.gate)
	wg.Wait()
	a.Flush(t.Context())
	if got := stored(t, inner.Disk, "snapshots/removed"); got != nil {
		t.Errorf("a removed write landed: %q", got)
	}
	if got := stored(t, inner.Disk, "snapshots/touched"); string(got) != "kept" {
		t.Errorf("touched: %q", got)
	}
}
