package cache

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// spilled is where an item's bodies are kept as files (see SpillTo).
type spilled struct{ body, gzip *spillFile }

// spillFile is one body on disk and the open handles to it that requests
// have finished with. Opening a file costs several system calls (open,
// the poller's registration attempt, fcntl, close) and a finalizer; a
// handle kept open and rewound costs one lseek.
type spillFile struct {
	path string
	mu   sync.Mutex
	idle []*os.File
	gone bool // the item left the tier: handles are closed, not kept
}

// maxIdle bounds the open handles kept per file: about the concurrent
// requests one busy document sees.
const maxIdle = 16

// spill writes it's bodies to new files. A failure (a full disk) leaves
// that body without a file; it is then sent from memory.
func (m *Memory) spill(it *Item) *spilled {
	sp := &spilled{body: m.writeSpill(it.Body)}
	if len(it.Gzip) >= m.spillMin {
		sp.gzip = m.writeSpill(it.Gzip)
	}
	return sp
}

func (m *Memory) writeSpill(b []byte) *spillFile {
	for range 3 {
		p := filepath.Join(m.spillDir, "r-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			return nil
		}
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(p)
			return nil
		}
		return &spillFile{path: p}
	}
	return nil
}

// BodyFile is an open file holding a memory-tier body from its start.
// Close hands it back for the next request.
type BodyFile struct {
	*os.File
	sf *spillFile
}

// Close rewinds the file and keeps it for reuse, or closes it.
func (b *BodyFile) Close() error {
	b.sf.release(b.File)
	return nil
}

// OpenFile opens the file holding it's Body (or, with gzip, its Gzip
// bytes), or returns nil when there is none: the item was not spilled, or
// it left the tier and its file is gone. The caller reads the file from
// its start and closes it.
func (it *Item) OpenFile(gzip bool) *BodyFile {
	if it.files == nil {
		return nil
	}
	sf := it.files.body
	if gzip {
		sf = it.files.gzip
	}
	if sf == nil {
		return nil
	}
	f := sf.open()
	if f == nil {
		return nil
	}
	return &BodyFile{File: f, sf: sf}
}

func (sf *spillFile) open() *os.File {
	sf.mu.Lock()
	if sf.gone {
		sf.mu.Unlock()
		return nil
	}
	if n := len(sf.idle); n > 0 {
		f := sf.idle[n-1]
		sf.idle = sf.idle[:n-1]
		sf.mu.Unlock()
		return f
	}
	sf.mu.Unlock()
	f, err := os.Open(sf.path)
	if err != nil {
		return nil
	}
	return f
}

func (sf *spillFile) release(f *os.File) {
	if _, err := f.Seek(0, io.SeekStart); err == nil {
		sf.mu.Lock()
		if !sf.gone && len(sf.idle) < maxIdle {
			sf.idle = append(sf.idle, f)
			f = nil
		}
		sf.mu.Unlock()
	}
	if f != nil {
		f.Close()
	}
}

// remove deletes the file; handles in use stay readable until closed.
func (sf *spillFile) remove() {
	if sf == nil {
		return
	}
	sf.mu.Lock()
	sf.gone = true
	idle := sf.idle
	sf.idle = nil
	sf.mu.Unlock()
	for _, f := range idle {
		f.Close()
	}
	os.Remove(sf.path)
}

func (sp *spilled) remove() {
	if sp != nil {
		sp.body.remove()
		sp.gzip.remove()
	}
}
