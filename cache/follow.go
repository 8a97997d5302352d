package cache

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// Follower reads a file being written, by offset only (see Pending.Follow).
type Follower interface {
	io.ReaderAt
	io.Closer
}

// Follow returns a reader of what has been written so far, on a
// duplicate of the writer's own descriptor: no path is opened, so it does
// not matter where the temporary file is or what becomes of its name, and
// the reader goes on after Commit or Abort. Reads are by offset (ReadAt):
// the duplicate shares the writer's file position, which it never uses.
// Once committed the stored file is opened instead (by its key). Follow
// and Commit must not run at once (the fills hold their lock around both).
func (p *Pending) Follow() (Follower, error) {
	if p.committed {
		f, _, err := p.Open()
		return f, err
	}
	if p.done {
		return nil, errors.New("cache: pending file aborted")
	}
	return dupFile(p.f)
}

// dupFile duplicates f's descriptor, close-on-exec like every descriptor
// Go opens (under ForkLock, so that no child started meanwhile inherits
// it).
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
