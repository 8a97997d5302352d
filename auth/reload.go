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
func (r *fileReloader) load(force bool, apply func(data []byte, found bool) error) error {
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		r.set(fileStamp{})
		return apply(nil, false)
	}
	if err != nil {
		return err
	}
	st := stampOf(fi)
	r.mu.Lock()
	same := st.same(r.last)
	r.mu.Unlock()
	if same && !force {
		return nil
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		return err
	}
	if err := apply(data, true); err != nil {
		return err
	}
	r.set(st)
	return nil
}

// wrote records the file as this process just wrote it, so that the next
// load does not read it back.
func (r *fileReloader) wrote() {
	if fi, err := os.Stat(r.path); err == nil {
		r.set(stampOf(fi))
	}
}

func (r *fileReloader) set(st fileStamp) {
	r.mu.Lock()
	r.last = st
	r.mu.Unlock()
}
