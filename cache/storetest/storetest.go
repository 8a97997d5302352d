// Package storetest is the conformance suite of cache.Store: every
// implementation (the disk tier, an S3 bucket) runs it, so that the
// proxy can rely on the same rules whichever it is given.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/npmgate/npmgate/cache"
)

// Large is the size of the suite's big objects: above the 5 MiB an S3
// multipart part must have at least, so a store that uploads in parts of
// that size does so here.
const Large = 6<<20 + 123

// Run runs the suite. newStore is called once per subtest and returns an
// empty store that lives until the subtest ends; subtests run in
// parallel.
func Run(t *testing.T, newStore func(t *testing.T) cache.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st cache.Store)
	}{
		{"PutGet", testPutGet},
		{"Missing", testMissing},
		{"Replace", testReplace},
		{"FailedPut", testFailedPut},
		{"Stat", testStat},
		{"Touch", testTouch},
		{"Remove", testRemove},
		{"Walk", testWalk},
		{"Keys", testKeys},
		{"Snapshot", testSnapshot},
		{"Check", testCheck},
		{"ConcurrentPuts", testConcurrentPuts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Bytes returns n pseudo-random bytes, the same for the same seed.
func Bytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	Stream(seed, int64(n)).Read(b)
	return b
}

// Stream yields n pseudo-random bytes, the same for the same seed, without
// holding them in memory.
func Stream(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	s[2], s[3] = byte(seed>>16), byte(seed>>24)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// hiddenSize hides a reader's length (and any WriterTo, ReaderAt or
// Seeker) from the store.
type hiddenSize struct{ r io.Reader }

func (h hiddenSize) Read(p []byte) (int, error) { return h.r.Read(p) }

func put(t *testing.T, st cache.Store, key string, data []byte) {
	t.Helper()
	if err := st.Put(ctxFor(t), key, hiddenSize{bytes.NewReader(data)}, int64(len(data))); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

// read returns the hash and length of key's bytes, and the Info Get gave.
func read(t *testing.T, st cache.Store, key string) (sum [32]byte, n int64, info cache.Info, err error) {
	t.Helper()
	r, info, err := st.Get(ctxFor(t), key)
	if err != nil {
		return sum, 0, info, err
	}
	defer r.Close()
	h := sha256.New()
	n, err = io.Copy(h, r)
	copy(sum[:], h.Sum(nil))
	return sum, n, info, err
}

// expect checks that key holds exactly data (or nothing, for nil).
func expect(t *testing.T, st cache.Store, key string, data []byte) {
	t.Helper()
	sum, n, info, err := read(t, st, key)
	if data == nil {
		if !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("Get %s: %d bytes, %v; want ErrNotFound", key, n, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	if n != int64(len(data)) || sum != sha256.Sum256(data) {
		t.Fatalf("Get %s: %d bytes (hash %x), want %d bytes (hash %x)", key, n, sum[:4], len(data), sha256.Sum256(data))
	}
	if info.Size != int64(len(data)) || info.Key != key {
		t.Fatalf("Get %s: Info %+v, want size %d", key, info, len(data))
	}
}

func testPutGet(t *testing.T, st cache.Store) {
	objects := []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"one", []byte{'x'}},
		{"small", []byte(`{"name":"left-pad"}` + "\n\x00\xff")},
		{"64KiB", Bytes(1, 64<<10)},
		{"large", Bytes(2, Large)},
	}
	for _, o := range objects {
		for _, known := range []bool{true, false} {
			key := fmt.Sprintf("tarballs/putget/%s-%v", o.name, known)
			size := int64(len(o.data))
			if !known {
				size = -1
			}
			if err := st.Put(ctxFor(t), key, hiddenSize{bytes.NewReader(o.data)}, size); err != nil {
				t.Fatalf("Put %s: %v", key, err)
			}
			expect(t, st, key, o.data)
			info, err := st.Stat(ctxFor(t), key)
			if err != nil || info.Size != int64(len(o.data)) || info.Key != key {
				t.Fatalf("Stat %s: %+v, %v; want size %d", key, info, err, len(o.data))
			}
		}
	}
}

func testMissing(t *testing.T, st cache.Store) {
	put(t, st, "tarballs/present", []byte("x"))
	for _, key := range []string{"tarballs/absent", "tarballs/present/below", "snapshots/no/such/dir.json", "tarballs/presen"} {
		if r, _, err := st.Get(ctxFor(t), key); !errors.Is(err, cache.ErrNotFound) {
			if r != nil {
				r.Close()
			}
			t.Errorf("Get %s: %v, want ErrNotFound", key, err)
		}
		if _, err := st.Stat(ctxFor(t), key); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("Stat %s: %v, want ErrNotFound", key, err)
		}
		if err := st.Touch(ctxFor(t), key); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("Touch %s: %v, want ErrNotFound", key, err)
		}
		if err := st.Remove(ctxFor(t), key); err != nil {
			t.Errorf("Remove %s: %v", key, err)
		}
	}
	expect(t, st, "tarballs/present", []byte("x"))
}

// testReplace checks that readers see the old object or the new one,
// whole: one opened before the replacement reads the old bytes to the end,
// and readers racing a writer never see a mix.
func testReplace(t *testing.T, st cache.Store) {
	const key = "snapshots/replace.json"
	a, b := Bytes(3, 4<<20), Bytes(4, 3<<20)
	put(t, st, key, a)

	r, _, err := st.Get(ctxFor(t), key)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1000)
	if _, err := io.ReadFull(r, first); err != nil {
		t.Fatal(err)
	}
	put(t, st, key, b)
	rest, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(append(first, rest...), a) {
		t.Fatalf("a reader opened before the replacement read %d bytes (%v), not the old object", len(first)+len(rest), err)
	}
	expect(t, st, key, b)

	sums := map[[32]byte]int64{sha256.Sum256(a): int64(len(a)), sha256.Sum256(b): int64(len(b))}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				sum, n, info, err := read(t, st, key)
				if err != nil {
					t.Errorf("Get during replacements: %v", err)
					return
				}
				if want, ok := sums[sum]; !ok || n != want || info.Size != n {
					t.Errorf("Get during replacements: %d bytes (Info size %d), neither object", n, info.Size)
					return
				}
			}
		})
	}
	for i := range 6 {
		data := a
		if i%2 == 0 {
			data = b
		}
		if err := st.Put(ctxFor(t), key, hiddenSize{bytes.NewReader(data)}, -1); err != nil {
			t.Error(err)
		}
	}
	close(done)
	wg.Wait()
}

// failing yields data up to at, then does what its failure says.
type failing struct {
	data   []byte
	at     int
	off    int
	err    error              // returned once at is reached
	cancel context.CancelFunc // called once at is reached; reading goes on
}

func (f *failing) Read(p []byte) (int, error) {
	if f.off >= f.at {
		if f.cancel != nil {
			f.cancel()
		} else if f.err != nil {
			return 0, f.err
		}
	}
	if f.off == len(f.data) {
		return 0, io.EOF
	}
	end := len(f.data)
	if f.off < f.at {
		end = f.at
	}
	n := copy(p, f.data[f.off:end])
	f.off += n
	return n, nil
}

var errBroken = errors.New("connection to upstream broke")

// testFailedPut checks that a Put whose reader fails, whose context is
// cancelled, or whose reader yields another size than declared, returns
// an error and leaves the key as it was: absent, or the earlier object.
func testFailedPut(t *testing.T, st cache.Store) {
	type failure struct {
		name string
		// put runs the failing Put of data.
		put func(ctx context.Context, key string, data []byte) error
		// want checks its error.
		want func(err error) bool
	}
	isErr := func(err error) bool { return err != nil }
	failures := []failure{}
	for _, known := range []bool{true, false} {
		size := func(data []byte) int64 {
			if known {
				return int64(len(data))
			}
			return -1
		}
		failures = append(failures,
			failure{
				name: fmt.Sprintf("reader error, size known %v", known),
				put: func(ctx context.Context, key string, data []byte) error {
					return st.Put(ctx, key, &failing{data: data, at: len(data) * 9 / 10, err: errBroken}, size(data))
				},
				want: func(err error) bool { return errors.Is(err, errBroken) },
			},
			failure{
				name: fmt.Sprintf("unexpected EOF, size known %v", known),
				put: func(ctx context.Context, key string, data []byte) error {
					return st.Put(ctx, key, &failing{data: data, at: len(data) * 9 / 10, err: io.ErrUnexpectedEOF}, size(data))
				},
				want: isErr,
			},
			failure{
				name: fmt.Sprintf("cancelled, size known %v", known),
				put: func(ctx context.Context, key string, data []byte) error {
					ctx, cancel := context.WithCancel(ctx)
					defer cancel()
					return st.Put(ctx, key, &failing{data: data, at: len(data) * 9 / 10, cancel: cancel}, size(data))
				},
				want: func(err error) bool { return errors.Is(err, context.Canceled) },
			},
		)
	}
	failures = append(failures,
		failure{
			name: "fewer bytes than the size",
			put: func(ctx context.Context, key string, data []byte) error {
				return st.Put(ctx, key, hiddenSize{bytes.NewReader(data)}, int64(len(data))+1)
			},
			want: isErr,
		},
		failure{
			name: "more bytes than the size",
			put: func(ctx context.Context, key string, data []byte) error {
				return st.Put(ctx, key, hiddenSize{bytes.NewReader(data)}, int64(len(data))-1)
			},
			want: isErr,
		},
		failure{
			name: "one byte, size 0",
			put: func(ctx context.Context, key string, data []byte) error {
				return st.Put(ctx, key, hiddenSize{bytes.NewReader(data[:1])}, 0)
			},
			want: isErr,
		},
	)
	objects := []struct {
		name string
		data []byte
	}{
		{"small", Bytes(5, 3000)},
		{"large", Bytes(6, Large)},
	}
	earlier := []byte("the earlier object")
	for _, f := range failures {
		for _, o := range objects {
			for _, before := range [][]byte{nil, earlier} {
				key := fmt.Sprintf("tarballs/failed/%d", rand.Uint64())
				if before != nil {
					put(t, st, key, before)
				}
				err := f.put(ctxFor(t), key, o.data)
				if !f.want(err) {
					t.Errorf("%s, %s object, earlier object %v: Put returned %v", f.name, o.name, before != nil, err)
				}
				expect(t, st, key, before)
			}
		}
	}
	// A size mismatch with nothing at all to read.
	if err := st.Put(ctxFor(t), "tarballs/failed/empty", hiddenSize{bytes.NewReader(nil)}, 1); err == nil {
		t.Error("Put of 0 bytes with size 1 succeeded")
	}
	expect(t, st, "tarballs/failed/empty", nil)
}

func testStat(t *testing.T, st cache.Store) {
	start := time.Now()
	put(t, st, "tarballs/stat", Bytes(7, 1234))
	info, err := st.Stat(ctxFor(t), "tarballs/stat")
	if err != nil {
		t.Fatal(err)
	}
	// S3 keeps modification times to the second.
	if info.Size != 1234 || info.Key != "tarballs/stat" || info.ModTime.Before(start.Add(-2*time.Second)) || info.ModTime.After(time.Now().Add(2*time.Second)) {
		t.Errorf("Stat: %+v, want size 1234 and a time near %v", info, start)
	}
}

func testTouch(t *testing.T, st cache.Store) {
	const key = "snapshots/npmjs/touched.json"
	data := []byte("document")
	put(t, st, key, data)
	before, err := st.Stat(ctxFor(t), key)
	if err != nil {
		t.Fatal(err)
	}
	// Over a second: S3 keeps modification times to the second.
	time.Sleep(1100 * time.Millisecond)
	if err := st.Touch(ctxFor(t), key); err != nil {
		t.Fatal(err)
	}
	after, err := st.Stat(ctxFor(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime.After(before.ModTime) {
		t.Errorf("Touch: modification time %v, before it %v", after.ModTime, before.ModTime)
	}
	expect(t, st, key, data)
	if _, _, info, _ := read(t, st, key); !info.ModTime.Equal(after.ModTime) {
		t.Errorf("Get's modification time %v, Stat's %v", info.ModTime, after.ModTime)
	}
	if err := st.Touch(ctxFor(t), "snapshots/npmjs/absent.json"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Touch of a missing key: %v", err)
	}
}

func testRemove(t *testing.T, st cache.Store) {
	const key = "tarballs/remove"
	put(t, st, key, []byte("x"))
	put(t, st, key+"-kept", []byte("y"))
	for range 2 {
		if err := st.Remove(ctxFor(t), key); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		expect(t, st, key, nil)
		if _, err := st.Stat(ctxFor(t), key); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("Stat after Remove: %v", err)
		}
	}
	if err := st.Remove(ctxFor(t), "tarballs/never/was"); err != nil {
		t.Errorf("Remove of a missing key: %v", err)
	}
	expect(t, st, key+"-kept", []byte("y"))
}

func walk(t *testing.T, st cache.Store, prefix string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := st.Walk(ctxFor(t), prefix, func(info cache.Info) error {
		if _, dup := got[info.Key]; dup {
			t.Errorf("Walk %q: %s twice", prefix, info.Key)
		}
		got[info.Key] = info.Size
		if info.ModTime.IsZero() {
			t.Errorf("Walk %q: %s without a modification time", prefix, info.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk %q: %v", prefix, err)
	}
	return got
}

func testWalk(t *testing.T, st cache.Store) {
	if got := walk(t, st, ""); len(got) != 0 {
		t.Errorf("Walk of an empty store: %v", got)
	}
	tarballs := map[string]int64{
		"tarballs/a":                           1,
		"tarballs/sha512/ab/abcdef.tgz":        22,
		"tarballs/sha1/00/0011.tgz":            0,
		cache.TarballKey("sha512", hexOf("x")): 333,
	}
	snapshots := map[string]int64{
		"snapshots/npmjs/lodash.json":                    4,
		cache.SnapshotKey("npmjs", "@types/node"):        5,
		cache.SnapshotKey("npmjs", "tarballs-lookalike"): 6,
	}
	all := maps.Clone(tarballs)
	maps.Copy(all, snapshots)
	all[cache.LocalKey("main", "pkg")] = 7
	for k, n := range all {
		put(t, st, k, Bytes(8, int(n)))
	}
	if err := st.Check(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix string
		want   map[string]int64
	}{
		{"tarballs/", tarballs},
		{"snapshots/", snapshots},
		{"", all},
		{"local/", map[string]int64{cache.LocalKey("main", "pkg"): 7}},
		{"nothing/", map[string]int64{}},
	} {
		if got := walk(t, st, c.prefix); !maps.Equal(got, c.want) {
			t.Errorf("Walk %q: %v, want %v", c.prefix, got, c.want)
		}
	}
	errStop := errors.New("stop")
	calls := 0
	err := st.Walk(ctxFor(t), "tarballs/", func(cache.Info) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("Walk whose fn fails: %v after %d calls", err, calls)
	}
}

func hexOf(s string) string {
	sum := sha512.Sum512([]byte(s))
	return hex.EncodeToString(sum[:])
}

// testKeys stores under keys as the proxy builds them: a scope's slash,
// case escapes, percent escapes.
func testKeys(t *testing.T, st cache.Store) {
	keys := []string{
		cache.TarballKey("sha512", hexOf("tarball")),
		cache.TarballKey("sha1", "abc"),
		cache.SnapshotKey("npmjs", "@types/node"),
		cache.SnapshotKey("npmjs", "JSONStream"),
		cache.SnapshotKey("npmjs", "jsonstream"),
		cache.LocalKey("main", "@scope/we!rd~(name) +x"),
		cache.LocalKey("main", "a/b"),
	}
	for _, key := range keys {
		put(t, st, key, []byte(key))
	}
	want := map[string]int64{}
	for _, key := range keys {
		expect(t, st, key, []byte(key))
		want[key] = int64(len(key))
	}
	if got := walk(t, st, ""); !maps.Equal(got, want) {
		t.Errorf("Walk: %v, want %v", got, want)
	}
}

func testSnapshot(t *testing.T, st cache.Store) {
	ctx := ctxFor(t)
	for i, c := range []struct {
		meta cache.SnapshotMeta
		body []byte
	}{
		{cache.SnapshotMeta{ETag: `W/"abc"`, LastModified: "Tue, 01 Jul 2025 10:00:00 GMT"}, []byte("{\"name\":\"x\",\n\"versions\":{}}\n")},
		{cache.SnapshotMeta{}, []byte{}},
		{cache.SnapshotMeta{ETag: `"e"`}, Bytes(9, 300<<10)},
	} {
		key := cache.SnapshotKey("npmjs", fmt.Sprintf("@scope/doc%d", i))
		start := time.Now()
		if err := cache.WriteSnapshot(ctx, st, key, c.meta, c.body); err != nil {
			t.Fatal(err)
		}
		body, meta, fetched, err := cache.ReadSnapshot(ctx, st, key)
		if err != nil || !bytes.Equal(body, c.body) || meta != c.meta {
			t.Fatalf("ReadSnapshot: %d bytes, %+v, %v; want %d bytes, %+v", len(body), meta, err, len(c.body), c.meta)
		}
		if fetched.Before(start.Add(-2*time.Second)) || fetched.After(time.Now().Add(2*time.Second)) {
			t.Errorf("ReadSnapshot: fetched %v, want about %v", fetched, start)
		}
		meta, fetched2, err := cache.SnapshotInfo(ctx, st, key)
		if err != nil || meta != c.meta || !fetched2.Equal(fetched) {
			t.Fatalf("SnapshotInfo: %+v %v %v; want %+v %v", meta, fetched2, err, c.meta, fetched)
		}
	}
	if _, _, _, err := cache.ReadSnapshot(ctx, st, cache.SnapshotKey("npmjs", "absent")); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("ReadSnapshot of a missing key: %v", err)
	}
	if _, _, err := cache.SnapshotInfo(ctx, st, cache.SnapshotKey("npmjs", "absent")); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("SnapshotInfo of a missing key: %v", err)
	}
}

func testCheck(t *testing.T, st cache.Store) {
	for range 2 {
		if err := st.Check(ctxFor(t)); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	if got := walk(t, st, ""); len(got) != 0 {
		t.Errorf("Check left objects: %v", got)
	}
}

// testConcurrentPuts races Puts of different contents to one key: the
// key ends with one of them, whole.
func testConcurrentPuts(t *testing.T, st cache.Store) {
	const key = "tarballs/raced"
	sums := map[[32]byte]int{}
	contents := make([][]byte, 8)
	for i := range contents {
		contents[i] = Bytes(uint64(100+i), 256<<10+i*1000)
		sums[sha256.Sum256(contents[i])] = len(contents[i])
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, data := range contents {
		size := int64(len(data))
		if i%2 == 1 {
			size = -1
		}
		wg.Go(func() {
			<-start
			if err := st.Put(ctxFor(t), key, hiddenSize{bytes.NewReader(data)}, size); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	sum, n, info, err := read(t, st, key)
	if err != nil {
		t.Fatal(err)
	}
	if want, ok := sums[sum]; !ok || int64(want) != n || info.Size != n {
		t.Errorf("after racing Puts: %d bytes (Info size %d), none of the contents", n, info.Size)
	}
}
