package auth

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// fileStamp is what says a file changed on disk: a rename over it (how
// writeFileAtomic and editors replace files) changes the inode even when
// the size and a coarse mtime stay the same.
type fileStamp struct {
	mtime time.Time
	size  int64
	inode uint64
}

func (a fileStamp) same(b fileStamp) bool {
	return a.mtime.Equal(b.mtime) && a.size == b.size && a.inode == b.inode
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{mtime: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.inode = sys.Ino
	}
	return st
}

// fileReloader re-reads one file (the htpasswd users, the tokens) when
// it changed on disk since it was last read or written.
type fileReloader struct {
	path string
	mu   sync.Mutex
	last fileStamp
}

// load calls apply with the file's contents when it changed since the
// last load (or always, with force), and with found false when it does
// not exist (an empty store). An error, from reading or from apply, is
// returned and leaves the last stamp, so the next load tries again.
//
// Loads and updates hold the reloader's lock from the file's stat to the
// contents' application, so that no load applies contents read before a
// write after that write: the first token made in a new data directory
// was lost so (a load that found no file applied "no tokens" just after
// the write), and the file, unchanged since, was never read again.
func (r *fileReloader) load(force bool, apply func(data []byte, found bool) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked(force, apply)
}

func (r *fileReloader) loadLocked(force bool, apply func(data []byte, found bool) error) error {
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		r.last = fileStamp{}
		return apply(nil, false)
	}
	if err != nil {
		return err
	}
	st := stampOf(fi)
	if st.same(r.last) && !force {
		return nil
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		return err
	}
	if err := apply(data, true); err != nil {
		return err
	}
	r.last = st
	return nil
}

// update reads the file afresh (apply), then has write replace it, and
// records the file as this process wrote it, so that the next load does
// not read it back: all under the reloader's lock (see load).
func (r *fileReloader) update(apply func(data []byte, found bool) error, write func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.loadLocked(true, apply); err != nil {
		return err
	}
	if err := write(); err != nil {
		return err
	}
	if fi, err := os.Stat(r.path); err == nil {
		r.last = stampOf(fi)
	}
	return nil
}
