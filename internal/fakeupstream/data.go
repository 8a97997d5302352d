package fakeupstream

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrNotRecorded is returned for a package or tarball that is not in the
// recorded data.
var ErrNotRecorded = errors.New("fakeupstream: not recorded")

// Dir returns the absolute path of the repository's testdata/registry. It is
// found from this source file's location, so it works from any package's
// tests; if the binary was built with -trimpath it falls back to walking up
// from the working directory to the module root.
func Dir() string {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		d := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "registry")
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("testdata", "registry")
	}
	for d := wd; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/npmgate/npmgate")) {
			return filepath.Join(d, "testdata", "registry")
		}
		parent := filepath.Dir(d)
		if parent == d {
			return filepath.Join(wd, "testdata", "registry")
		}
		d = parent
	}
}

// Escape returns the on-disk form of a package name: the scope separator "/"
// becomes "%2f" ("@types/node" -> "@types%2fnode").
func Escape(name string) string { return strings.Replace(name, "/", "%2f", 1) }

// validName reports whether name is safe to map onto a file name: either
// "name" or "@scope/name", with no empty, "." or ".." parts, no leading dot
// and no backslash or NUL.
func validName(name string) bool {
	if name == "" || strings.ContainsAny(name, "\\\x00") {
		return false
	}
	parts := strings.Split(name, "/")
	switch len(parts) {
	case 1:
	case 2:
		if len(parts[0]) < 2 || parts[0][0] != '@' {
			return false
		}
	default:
		return false
	}
	for _, p := range parts {
		if p == "" || p[0] == '.' {
			return false
		}
	}
	return true
}

func validFile(base string) bool {
	return base != "" && base != "." && base != ".." && !strings.ContainsAny(base, "/\\\x00")
}

// ReadPackument returns the recorded packument of name from dir, exactly as
// the registry sent it (decompressed).
func ReadPackument(dir, name string) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: invalid name %q", ErrNotRecorded, name)
	}
	f, err := os.Open(filepath.Join(dir, "packuments", Escape(name)+".json.gz"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: packument %s", ErrNotRecorded, name)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("packument %s: %w", name, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("packument %s: %w", name, err)
	}
	return b, nil
}

// ReadTarball returns the recorded tarball bytes of name/-/basename.
func ReadTarball(dir, name, basename string) ([]byte, error) {
	if !validName(name) || !validFile(basename) {
		return nil, fmt.Errorf("%w: invalid tarball %s/-/%s", ErrNotRecorded, name, basename)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tarballs", Escape(name), basename))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: tarball %s/-/%s", ErrNotRecorded, name, basename)
	}
	return b, err
}

// Names lists the package names that have a recorded packument in dir,
// sorted.
func Names(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "packuments"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".json.gz")
		if !ok || e.IsDir() {
			continue
		}
		names = append(names, strings.Replace(n, "%2f", "/", 1))
	}
	sort.Strings(names)
	return names, nil
}

// Tarball describes one recorded tarball and what its packument says about
// it.
type Tarball struct {
	Name      string // package name, "@scope/name" for scoped packages
	Version   string // key in the packument's "versions"
	Basename  string // last path segment of dist.tarball, the file name on disk
	Path      string // absolute path of the file
	URL       string // dist.tarball as recorded
	Integrity string // dist.integrity (may be empty for very old packages)
	Shasum    string // dist.shasum
}

// Tarballs lists every recorded tarball in dir with its packument's dist
// data, sorted by name and then file name. A tarball file that no version of
// the packument names is an error.
func Tarballs(dir string) ([]Tarball, error) {
	names, err := Names(dir)
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var out []Tarball
	for _, name := range names {
		ents, err := os.ReadDir(filepath.Join(dir, "tarballs", Escape(name)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		doc, err := ReadPackument(dir, name)
		if err != nil {
			return nil, err
		}
		var p struct {
			Versions map[string]struct {
				Dist struct {
					Tarball   string `json:"tarball"`
					Integrity string `json:"integrity"`
					Shasum    string `json:"shasum"`
				} `json:"dist"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(doc, &p); err != nil {
			return nil, fmt.Errorf("packument %s: %w", name, err)
		}
		byBase := map[string]Tarball{}
		for v, m := range p.Versions {
			b := tarballBasename(m.Dist.Tarball)
			if b == "" {
				continue
			}
			byBase[b] = Tarball{Name: name, Version: v, Basename: b, URL: m.Dist.Tarball, Integrity: m.Dist.Integrity, Shasum: m.Dist.Shasum}
		}
		for _, e := range ents {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			t, ok := byBase[e.Name()]
			if !ok {
				return nil, fmt.Errorf("tarball %s/%s: no version of the packument points at it", name, e.Name())
			}
			t.Path = filepath.Join(dir, "tarballs", Escape(name), e.Name())
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Basename < out[j].Basename
	})
	return out, nil
}

// tarballBasename returns the file name of a dist.tarball URL as it appears
// on disk (percent-decoded), or "" if there is none.
func tarballBasename(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" {
		return ""
	}
	b := path.Base(u.Path)
	if !validFile(b) {
		return ""
	}
	return b
}

// prepared is what serving one recorded packument needs, whatever the
// server's URL: the recorded bytes, the derived abbreviated document, and
// where the dist.tarball strings sit in each.
type prepared struct {
	raw       []byte
	spans     []tarballSpan
	abbr      []byte
	abbrSpans []tarballSpan
	lastMod   time.Time
}

type preparedEntry struct {
	once sync.Once
	p    *prepared
	err  error
}

// preparedCache memoises prepare across servers in one process (tests start
// many servers over the same files; scanning and abbreviating a 10 MB
// packument takes a noticeable fraction of a second, more under -race). It
// is keyed by the file's path, size and modification time, so a changed
// file is prepared again.
var preparedCache sync.Map // string -> *preparedEntry

func prepare(dir, name string) (*prepared, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: invalid name %q", ErrNotRecorded, name)
	}
	file := filepath.Join(dir, "packuments", Escape(name)+".json.gz")
	st, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: packument %s", ErrNotRecorded, name)
	}
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", file, st.Size(), st.ModTime().UnixNano())
	v, _ := preparedCache.LoadOrStore(key, &preparedEntry{})
	e := v.(*preparedEntry)
	e.once.Do(func() {
		p := &prepared{}
		if p.raw, e.err = ReadPackument(dir, name); e.err != nil {
			return
		}
		var versions []string
		if versions, p.spans, e.err = scanPackument(p.raw); e.err != nil {
			e.err = fmt.Errorf("packument %s: %w", name, e.err)
			return
		}
		if p.abbr, p.lastMod, e.err = abbreviate(p.raw, versions); e.err != nil {
			e.err = fmt.Errorf("packument %s: %w", name, e.err)
			return
		}
		if _, p.abbrSpans, e.err = scanPackument(p.abbr); e.err != nil {
			e.err = fmt.Errorf("abbreviated packument %s: %w", name, e.err)
			return
		}
		e.p = p
	})
	return e.p, e.err
}
