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
// while it downloads reads the same growing temporary file, so N clients
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
	pending *Pending // the file being written; readers open it through it
}

// Fetch returns a reader of key's bytes and their size (-1 if unknown):
// the stored file when there is one, else a reader following a download
// from src that is verified against want before it is stored. A reader of a
// download that fails returns that error instead of io.EOF, and holds back
// the final byte until the check passes, so a client never receives a whole
// body that failed verification. onDone, if not nil, is called once with
// the result of a download this call started.
func (g *Fills) Fetch(ctx context.Context, key string, want Expect, src Source, onDone func(error)) (io.ReadCloser, int64, error) {
	if f, size, err := g.disk.OpenBlob(key); err == nil {
		return f, size, nil
	}
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
			return f, size, nil
		}
		fl = &fill{size: -1}
		fl.cond = sync.NewCond(&fl.mu)
		g.active[key] = fl
		go g.run(key, fl, want, src, onDone)
	}
	g.mu.Unlock()
	return fl.reader(ctx)
}

func (g *Fills) run(key string, fl *fill, want Expect, src Source, onDone func(error)) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	p, err := g.download(ctx, key, fl, want, src)
	// The verdict and the removal of a failed file happen under one lock,
	// so no reader ever finds a started fill whose file is already gone.
	fl.mu.Lock()
	if err != nil && p != nil {
		p.Abort()
	}
	fl.done, fl.err, fl.started = true, err, true
	fl.cond.Broadcast()
	fl.mu.Unlock()
	g.mu.Lock()
	if g.active[key] == fl { // a request after a failure may have started the next fill
		delete(g.active, key)
	}
	g.mu.Unlock()
	if onDone != nil {
		onDone(err)
	}
}

// download copies src into a pending file and verifies it. On failure
// the pending file is returned for run to discard under the fill's lock.
func (g *Fills) download(ctx context.Context, key string, fl *fill, want Expect, src Source) (*Pending, error) {
	body, size, err := src(ctx)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	p, err := g.disk.Create(key)
	if err != nil {
		return nil, err
	}
	fl.mu.Lock()
	fl.started, fl.size, fl.pending = true, size, p
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
	if err := p.Commit(); err != nil {
		return nil, err // Commit cleans up after itself
	}
	return nil, nil
}

// failed reports whether the fill has ended in an error.
func (fl *fill) failed() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.done && fl.err != nil
}

// reader waits until the source has answered, then opens the file.
func (fl *fill) reader(ctx context.Context) (io.ReadCloser, int64, error) {
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
		return nil, 0, ctx.Err()
	}
	if fl.done && fl.err != nil {
		return nil, 0, fl.err
	}
	f, err := fl.pending.Follow()
	if err != nil {
		return nil, 0, err
	}
	return &followReader{fl: fl, f: f}, fl.size, nil
}

// followReader reads a file while it is being written.
type followReader struct {
	fl  *fill
	f   Follower
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

func (r *followReader) Close() error { return r.f.Close() }
