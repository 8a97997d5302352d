package cache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotFound is returned when a key has no stored bytes.
var ErrNotFound = errors.New("not found")

// Disk is the on-disk tier under one data directory. Every file is opened
// through an os.Root, so no key, however built, can reach outside it, and
// every write goes to a temporary file that is synced and renamed into
// place, so a crash leaves the old file or the new one, never a part.
type Disk struct {
	dir  string
	root *os.Root
	lock *os.File // held (flock) by the first process to open the directory
}

const (
	tmpDir = "tmp"
	// spillDir holds the memory tier's bodies kept as files (SpillTo),
	// apart from tmp/ so that its files are never mistaken for downloads.
	spillDir = "rendered"
)

// OpenDisk opens (creating it if needed) the data directory and removes
// temporary files left by an earlier crash.
func OpenDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	d := &Disk{dir: dir, root: root}
	// Temporary files are swept only by the process that holds the
	// directory's lock: a tool opened beside a running server (explain,
	// gc, warm) must not delete the server's downloads in progress.
	if lf, err := root.OpenFile(".lock", os.O_RDWR|os.O_CREATE, 0o644); err == nil {
		if syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			d.lock = lf
			for _, dir := range []string{tmpDir, spillDir} {
				if err := root.RemoveAll(dir); err != nil {
					return nil, fmt.Errorf("data directory: sweeping %s: %w", dir, err)
				}
			}
			if err := root.MkdirAll(spillDir, 0o700); err != nil {
				return nil, fmt.Errorf("data directory: %w", err)
			}
		} else {
			lf.Close()
		}
	}
	if err := root.MkdirAll(tmpDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return d, nil
}

// serverLock is the file a server holds (flock) for as long as it runs:
// two servers on one directory would overwrite each other's package
// documents and lose acknowledged publishes. Tools do not take it, so
// they keep working beside a server.
const serverLock = ".server.lock"

// ErrInUse is returned by LockServer when another process holds the
// directory as a server.
var ErrInUse = errors.New("in use by another npmgate server")

// LockServer claims dir (creating it if needed) for one server process
// until the returned file is closed (or the process exits). Errors match
// ErrInUse when another process holds it.
func LockServer(dir string) (io.Closer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, serverLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s: %w (it holds %s)", dir, ErrInUse, filepath.Join(dir, serverLock))
		}
		return nil, fmt.Errorf("data directory %s: locking %s: %w", dir, serverLock, err)
	}
	return f, nil
}

// Dir is the data directory.
func (d *Disk) Dir() string { return d.dir }

// SpillDir is the directory for the memory tier's files (Memory.SpillTo),
// swept when the directory is opened, and whether this process owns it:
// only the process holding the directory's lock uses it, so that a tool
// opened beside a running server leaves the server's files alone.
func (d *Disk) SpillDir() (string, bool) {
	return filepath.Join(d.dir, spillDir), d.lock != nil
}

// LockedByOther reports whether another process held the directory's lock
// when it was opened (then this one did not sweep temporary files). It says
// nothing of replicas sharing a bucket or a database.
func (d *Disk) LockedByOther() bool { return d.lock == nil }

// Close releases the directory handle and its lock.
func (d *Disk) Close() error {
	if d.lock != nil {
		d.lock.Close()
	}
	return d.root.Close()
}

// Writable checks that a file can be created, synced and removed, for
// readiness probes.
func (d *Disk) Writable() error {
	f, rel, err := d.createTemp("probe-")
	if err != nil {
		return err
	}
	err = errors.Join(f.Sync(), f.Close())
	return errors.Join(err, d.root.Remove(rel))
}

// Free is the space available to this process on the directory's file
// system, in bytes.
func (d *Disk) Free() (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// TarballKey is the content address of a tarball: its hash algorithm and
// lowercase hex digest.
func TarballKey(algo, hexSum string) string {
	if len(hexSum) < 4 {
		return "tarballs/" + escape(algo) + "/" + escape(hexSum)
	}
	return "tarballs/" + escape(algo) + "/" + hexSum[:2] + "/" + escape(hexSum) + ".tgz"
}

// SnapshotKey is where a connector's last copy of a document lives.
func SnapshotKey(connector, name string) string {
	return "snapshots/" + escape(connector) + "/" + escape(name) + ".json"
}

// LocalKey is where a feed keeps a package published to it.
func LocalKey(feed, name string) string {
	return "local/" + escape(feed) + "/" + escape(name) + ".json"
}

// escape makes a storage path from a name: lowercase letters, digits and
// -._ stay, upper case becomes '!' and the lower case letter (so JSONStream
// and jsonstream stay apart on case-insensitive disks), one '/' after a
// leading '@' makes a directory, and every other byte is %XX. No segment can
// be "." or "..".
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		case c == '.' && i > 0 && s[i-1] != '/':
			b.WriteByte(c)
		case c == '@' && i == 0:
			b.WriteByte(c)
		case c == '/' && s[0] == '@' && strings.IndexByte(s, '/') == i && i > 1 && i < len(s)-1:
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte('!')
			b.WriteByte(c + 'a' - 'A')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Open opens the file at key for reading.
func (d *Disk) Open(key string) (*os.File, int64, error) {
	return regularFile(d.root.Open(key))
}

// notExist reports whether err says a path is missing: not there, or
// below a file (a key under another key's file).
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// regularFile completes an open: a missing path or anything but a regular
// file is ErrNotFound, and the size comes with the file.
func regularFile(f *os.File, err error) (*os.File, int64, error) {
	if notExist(err) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, errors.Join(ErrNotFound, err)
	}
	return f, st.Size(), nil
}

// OpenBlob opens a content-addressed tarball. Its key is built by
// TarballKey from an algorithm name and hex digits, and is checked to have
// exactly that shape, so it cannot name anything else: it is opened by its
// full path in one system call, rather than walked through the root one
// directory at a time as Open does (which was half the cost of serving a
// stored tarball).
func (d *Disk) OpenBlob(key string) (*os.File, int64, error) {
	if !blobKeyShape(key) {
		return d.Open(key)
	}
	return regularFile(os.Open(filepath.Join(d.dir, key)))
}

// blobKeyShape accepts only tarballs/<algo>/<2 hex>/<hex>.tgz.
func blobKeyShape(key string) bool {
	rest, ok := strings.CutPrefix(key, "tarballs/")
	if !ok {
		return false
	}
	algo, rest, ok := strings.Cut(rest, "/")
	switch algo {
	case "sha512", "sha384", "sha256", "sha1":
	default:
		return false
	}
	dir, file, ok2 := strings.Cut(rest, "/")
	name, ok3 := strings.CutSuffix(file, ".tgz")
	if !ok || !ok2 || !ok3 || len(dir) != 2 || !strings.HasPrefix(name, dir) || len(name) < 40 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Get opens key for reading: an *os.File, which the front end sends by
// sendfile.
func (d *Disk) Get(_ context.Context, key string) (io.ReadCloser, Info, error) {
	f, size, err := d.OpenBlob(key)
	if err != nil {
		return nil, Info{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, err
	}
	return f, Info{Key: key, Size: size, ModTime: st.ModTime()}, nil
}

// Put writes key atomically from r.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := d.Create(key)
	if err != nil {
		return err
	}
	n, err := io.Copy(p, ctxReader{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("cache: %s: got %d bytes, expected %d", key, n, size)
	}
	if err != nil {
		p.Abort()
		return err
	}
	return p.Commit()
}

// ctxReader stops a copy once its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Stat describes key.
func (d *Disk) Stat(_ context.Context, key string) (Info, error) {
	st, err := d.root.Stat(key)
	if notExist(err) || err == nil && !st.Mode().IsRegular() {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, err
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Touch marks key as written now.
func (d *Disk) Touch(_ context.Context, key string) error {
	now := time.Now()
	err := d.root.Chtimes(key, now, now)
	if notExist(err) {
		return ErrNotFound
	}
	return err
}

// Remove deletes key; a missing key is not an error.
func (d *Disk) Remove(_ context.Context, key string) error {
	err := d.root.Remove(key)
	if notExist(err) {
		return nil
	}
	return err
}

// Walk visits every regular file under prefix, which names a directory
// (its last segment complete) or is empty for all stored objects. The
// temporary directory is never visited.
func (d *Disk) Walk(ctx context.Context, prefix string, fn func(Info) error) error {
	dir := strings.TrimSuffix(prefix, "/")
	if dir == "" {
		dir = "."
	}
	err := fs.WalkDir(d.root.FS(), dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.IsDir() {
			if p == tmpDir || p == spillDir {
				return fs.SkipDir
			}
			return ctx.Err()
		}
		if p == ".lock" || p == serverLock {
			return nil
		}
		info, err := de.Info()
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		return fn(Info{Key: p, Size: info.Size(), ModTime: info.ModTime()})
	})
	return err
}

// Check is Writable, for readiness probes.
func (d *Disk) Check(context.Context) error { return d.Writable() }

// createTemp makes a new file under tmp/ with a random name.
func (d *Disk) createTemp(prefix string) (*os.File, string, error) {
	for range 10 {
		rel := path.Join(tmpDir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := d.root.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, rel, err
	}
	return nil, "", errors.New("cache: cannot create a temporary file")
}

// Pending is a file being written. Nothing is visible at its key until
// Commit; Abort (or a crash) leaves no trace there.
type Pending struct {
	d         *Disk
	f         *os.File
	tmp       string // path relative to the root
	key       string
	done      bool
	committed bool
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

// Open opens a reader of what has been written so far (its size is what
// Stat says at the moment), or, once committed, of the stored file. A
// reader opened before a Commit or an Abort keeps reading the same bytes:
// the file is renamed or unlinked, not changed. Where the bytes are is
// the Pending's business: callers never see the temporary path. Open and
// Commit must not run at once (the fills hold their lock around both).
func (p *Pending) Open() (*os.File, int64, error) {
	name := p.tmp
	if p.committed {
		name = p.key
	}
	return regularFile(p.d.root.Open(name))
}

// Commit syncs the file and renames it into place, then syncs the
// directory so the rename survives a crash.
func (p *Pending) Commit() error {
	if p.done {
		return errors.New("cache: pending file already finished")
	}
	p.done = true
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
	p.committed = true
	return p.d.syncDir(dir)
}

// Abort discards the file.
func (p *Pending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.f.Close()
	p.d.root.Remove(p.tmp)
}

func (d *Disk) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// WriteFile atomically replaces key with what write produces.
func (d *Disk) WriteFile(key string, write func(w io.Writer) error) error {
	p, err := d.Create(key)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(p, 64<<10)
	if err := write(bw); err != nil {
		p.Abort()
		return err
	}
	if err := bw.Flush(); err != nil {
		p.Abort()
		return err
	}
	return p.Commit()
}
