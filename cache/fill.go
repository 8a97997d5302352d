package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ErrIntegrity is returned when downloaded bytes do not hash to what their
// metadata promised. Such bytes are never stored.
var ErrIntegrity = errors.New("integrity check failed")

// Source opens the upstream copy of a blob. size is -1 when unknown.
type Source func(ctx context.Context) (body io.ReadCloser, size int64, err error)

// Expect is what a blob must hash to.
type Expect struct {
	NewHash func() hash.Hash
	Sum     []byte
}

// Fills runs at most one download per key. Every client asking for a key
// while it downloads reads the same growing temporary file, through a
// descriptor the download hands it (Pending.Reader), so N clients
// cost one upstream transfer and all of them start receiving bytes at once.
// A download belongs to no client: it goes on when the client that started
// it goes away, and stops only at its own deadline.
type Fills struct {
	disk    *Disk
	timeout time.Duration
	mu      sync.Mutex
	active  map[string]*fill
	joined  atomic.Uint64
}

// Joined counts Fetch calls served from a download already running.
func (g *Fills) Joined() uint64 { return g.joined.Load() }

// NewFills makes a fill group writing into disk. timeout bounds one whole
// download.
func NewFills(disk *Disk, timeout time.Duration) *Fills {
	return &Fills{disk: disk, timeout: timeout, active: map[string]*fill{}}
}

type fill struct {
	mu      sync.Mutex
	cond    *sync.Cond
	started bool  // the source answered (or failed)
	size    int64 // -1 when unknown
	written int64
	done    bool
	err     error
	origin  Origin   // where the bytes come from, known once started
	pending *Pending // the file being written; nil before and once finished
	stored  bool     // committed: readers open the stored file
}

// originSource is a Source that also says where its bytes come from.
type originSource func(ctx context.Context) (io.ReadCloser, int64, Origin, error)

// upstream marks every body of src as coming from upstream.
func upstream(src Source) originSource {
	return func(ctx context.Context) (io.ReadCloser, int64, Origin, error) {
		body, size, err := src(ctx)
		return body, size, FromUpstream, err
	}
}

// Fetch returns a reader of key's bytes and their size (-1 if unknown):
// the stored file when there is one, else a reader following a download
// from src that is verified against want before it is stored. A reader of a
// download that fails returns that error instead of io.EOF, and holds back
// the final byte until the check passes, so a client never receives a whole
// body that failed verification. onDone, if not nil, is called once with
// the result of a download this call started.
func (g *Fills) Fetch(ctx context.Context, key string, want Expect, src Source, onDone func(error)) (io.ReadCloser, int64, error) {
	if b, ok := g.stored(key); ok {
		return b.Body, b.Size, nil
	}
	var done func(Origin, error)
	if onDone != nil {
		done = func(_ Origin, err error) { onDone(err) }
	}
	b, err := g.join(ctx, key, want, upstream(src), done)
	return b.Body, b.Size, err
}

// stored opens key's stored file, if there is one. Callers try it before
// join, so that a warm open builds no Source.
func (g *Fills) stored(key string) (Blob, bool) {
	f, size, err := g.disk.OpenBlob(key)
	if err != nil {
		return Blob{}, false
	}
	return Blob{Body: f, Size: size, Origin: FromDisk}, true
}

// join is Fetch after stored has missed, with the origin of the bytes:
// FromDisk for a file stored meanwhile, else the origin src gave the
// download, which onDone is told too.
func (g *Fills) join(ctx context.Context, key string, want Expect, src originSource, onDone func(Origin, error)) (Blob, error) {
	g.mu.Lock()
	fl, running := g.active[key]
	if running && fl.failed() {
		// The download has failed and is only cleaning up: this request
		// came after the verdict and gets a download of its own (the
		// fault may have cleared), not the old error.
		running = false
	}
	if running {
		g.joined.Add(1)
	} else {
		// Checked again under the lock: a fill may have committed since.
		if f, size, err := g.disk.OpenBlob(key); err == nil {
			g.mu.Unlock()
			return Blob{Body: f, Size: size, Origin: FromDisk}, nil
		}
		fl = &fill{size: -1}
		fl.cond = sync.NewCond(&fl.mu)
		g.active[key] = fl
		go g.run(key, fl, want, src, onDone)
	}
	g.mu.Unlock()
	return fl.reader(ctx, g.disk, key)
}

func (g *Fills) run(key string, fl *fill, want Expect, src originSource, onDone func(Origin, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	p, err := g.download(ctx, key, fl, want, src)
	// The verdict and the removal of a failed file happen under one lock,
	// so no reader ever finds a started fill whose file is already gone.
	fl.mu.Lock()
	if err != nil && p != nil {
		p.Abort()
	}
	fl.done, fl.err, fl.started, fl.pending = true, err, true, nil
	origin := fl.origin
	fl.cond.Broadcast()
	fl.mu.Unlock()
	g.mu.Lock()
	if g.active[key] == fl { // a request after a failure may have started the next fill
		delete(g.active, key)
	}
	g.mu.Unlock()
	if onDone != nil {
		onDone(origin, err)
	}
}

// download copies src into a pending file and verifies it. On failure
// the pending file is returned for run to discard under the fill's lock.
func (g *Fills) download(ctx context.Context, key string, fl *fill, want Expect, src originSource) (*Pending, error) {
	body, size, origin, err := src(ctx)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	p, err := g.disk.Create(key)
	if err != nil {
		return nil, err
	}
	fl.mu.Lock()
	fl.started, fl.size, fl.origin, fl.pending = true, size, origin, p
	fl.cond.Broadcast()
	fl.mu.Unlock()

	h := want.NewHash()
	buf := make([]byte, 64<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := p.Write(buf[:n]); err != nil {
				return p, err
			}
			fl.mu.Lock()
			fl.written += int64(n)
			fl.cond.Broadcast()
			fl.mu.Unlock()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return p, rerr
		}
	}
	if size >= 0 && fl.written != size {
		return p, fmt.Errorf("upstream sent %d bytes, announced %d", fl.written, size)
	}
	if !bytes.Equal(h.Sum(nil), want.Sum) {
		return p, ErrIntegrity
	}
	// Rename under the fill's lock, so a reader opening the file at the
	// same moment finds it at one path or the other.
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.pending = nil
	if err := p.Commit(); err != nil {
		return nil, err // Commit cleans up after itself
	}
	fl.stored = true
	return nil, nil
}

// failed reports whether the fill has ended in an error.
func (fl *fill) failed() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.done && fl.err != nil
}

// reader waits until the source has answered, then opens the file: the
// download's own descriptor while it runs, the stored file once committed.
func (fl *fill) reader(ctx context.Context, disk *Disk, key string) (Blob, error) {
	stop := context.AfterFunc(ctx, func() {
		fl.mu.Lock()
		fl.cond.Broadcast()
		fl.mu.Unlock()
	})
	defer stop()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for !fl.started && ctx.Err() == nil {
		fl.cond.Wait()
	}
	if !fl.started {
		return Blob{}, ctx.Err()
	}
	if fl.done && fl.err != nil {
		return Blob{}, fl.err
	}
	var f io.ReaderAt
	var c io.Closer
	switch {
	case fl.pending != nil:
		r, err := fl.pending.Reader()
		if err != nil {
			return Blob{}, err
		}
		f, c = r, r
	case fl.stored:
		sf, _, err := disk.Open(key)
		if err != nil {
			return Blob{}, err
		}
		f, c = sf, sf
	default:
		// Started with no file: the verdict came with no bytes written
		// (Create failed), and an error, handled above.
		return Blob{}, errors.New("cache: fill has no file")
	}
	return Blob{Body: &followReader{fl: fl, f: f, c: c}, Size: fl.size, Origin: fl.origin}, nil
}

// followReader reads a file while it is being written.
type followReader struct {
	fl  *fill
	f   io.ReaderAt
	c   io.Closer
	off int64
}

func (r *followReader) Read(p []byte) (int, error) {
	fl := r.fl
	fl.mu.Lock()
	for {
		if fl.done && fl.err != nil {
			// Checked first: not one more byte once the verdict is "bad".
			err := fl.err
			fl.mu.Unlock()
			return 0, err
		}
		limit := fl.written
		if !fl.done && fl.size > 0 && limit >= fl.size {
			limit = fl.size - 1 // the last byte waits for the verdict
		}
		if r.off < limit {
			if n := limit - r.off; int64(len(p)) > n {
				p = p[:n]
			}
			break
		}
		if fl.done {
			fl.mu.Unlock()
			return 0, io.EOF
		}
		fl.cond.Wait()
	}
	fl.mu.Unlock()
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *followReader) Close() error { return r.c.Close() }
