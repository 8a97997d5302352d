package cache

import (
	"errors"
	"io"
	"math"
	"os"
	"path"
	"sync/atomic"
	"syscall"
)

// Pending is a file being written. Nothing is visible at its key until
// Commit; Abort (or a crash) leaves no trace there.
type Pending struct {
	d    *Disk
	f    *os.File
	tmp  string // path relative to the root
	key  string
	done atomic.Bool // Commit or Abort has begun; Reader may read it meanwhile
}

// Create starts writing the file for key.
func (d *Disk) Create(key string) (*Pending, error) {
	f, rel, err := d.createTemp("w-")
	if err != nil {
		return nil, err
	}
	return &Pending{d: d, f: f, tmp: rel, key: key}, nil
}

func (p *Pending) Write(b []byte) (int, error) { return p.f.Write(b) }

// File is the temporary file itself, for readers that follow the write.
func (p *Pending) File() *os.File { return p.f }

// TmpKey is the temporary file's path under the root. Readers of a file
// being written use Reader instead, which needs no path; this remains for
// callers outside the package not yet moved to it.
func (p *Pending) TmpKey() string { return p.tmp }

// Reader opens what has been written so far for reading, on a descriptor
// of its own (a duplicate of the writer's): it needs no path, so it works
// whatever happens to the temporary file's name, and it goes on reading
// after Commit or Abort. Its Read starts at the first byte and returns
// io.EOF at the end of what is written at that moment; ReadAt reads
// anywhere, as the file grows. Called after (or racing) Commit or Abort,
// it fails, and the caller falls back to what it would do without the
// file.
func (p *Pending) Reader() (*PendingReader, error) {
	if p.done.Load() {
		return nil, errors.New("cache: pending file already finished")
	}
	f, err := dupFile(p.f)
	if err != nil {
		return nil, err
	}
	return &PendingReader{SectionReader: io.NewSectionReader(f, 0, math.MaxInt64-1), f: f}, nil
}

// PendingReader reads a file being written (Pending.Reader). The file
// offset it shares with the writer is never used: every read is a pread.
type PendingReader struct {
	*io.SectionReader
	f *os.File
}

// Close releases the reader's descriptor.
func (r *PendingReader) Close() error { return r.f.Close() }

// dupFile duplicates f's descriptor, close-on-exec like every descriptor
// Go opens (under ForkLock, so no child started meanwhile inherits it).
func dupFile(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	syscall.ForkLock.RLock()
	err = sc.Control(func(raw uintptr) {
		fd, derr = syscall.Dup(int(raw))
		if derr == nil {
			syscall.CloseOnExec(fd)
		}
	})
	syscall.ForkLock.RUnlock()
	if err = errors.Join(err, derr); err != nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// Commit syncs the file and renames it into place, then syncs the
// directory so the rename survives a crash.
func (p *Pending) Commit() error {
	if !p.done.CompareAndSwap(false, true) {
		return errors.New("cache: pending file already finished")
	}
	if err := p.f.Sync(); err != nil {
		p.f.Close()
		p.d.root.Remove(p.tmp)
		return err
	}
	if err := p.f.Close(); err != nil {
		p.d.root.Remove(p.tmp)
		return err
	}
	dir := path.Dir(p.key)
	if err := p.d.root.MkdirAll(dir, 0o755); err != nil {
		p.d.root.Remove(p.tmp)
		return err
	}
	if err := p.d.root.Rename(p.tmp, p.key); err != nil {
		p.d.root.Remove(p.tmp)
		return err
	}
	return p.d.syncDir(dir)
}

// Abort discards the file.
func (p *Pending) Abort() {
	if !p.done.CompareAndSwap(false, true) {
		return
	}
	p.f.Close()
	p.d.root.Remove(p.tmp)
}
