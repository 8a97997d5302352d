// Command record downloads real packuments and tarballs from a live npm
// registry into the layout that package fakeupstream serves (see
// testdata/registry/README.md). It is run by hand when the recorded data has
// to change; tests never run it.
//
// Usage (from the repository root):
//
//	go run ./internal/fakeupstream/cmd/record \
//	    -lockfile testdata/e2e/app/package-lock.json \
//	    -out testdata/registry \
//	    -extra typescript@1.0.0 -extra @types/node@20.1.0
//
// For every package in the lockfile (and every -extra) it stores the full
// packument (requested with "Accept: application/json") exactly as the
// registry sent it, gzip-compressed, as packuments/<escaped>.json.gz, where
// <escaped> is the name with "/" replaced by "%2f". For every version the
// lockfile uses (and every -extra name@version) it stores the tarball named
// by dist.tarball, byte for byte, as tarballs/<escaped>/<basename>, after
// checking it against dist.integrity (and dist.shasum).
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	lockfile    string
	out         string
	registry    string
	extras      stringList
	concurrency int
	prune       bool
	force       bool
	timeout     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.lockfile, "lockfile", "testdata/e2e/app/package-lock.json", "npm lockfile (v2 or v3) whose packages are recorded; empty for none")
	flag.StringVar(&o.out, "out", "testdata/registry", "output directory")
	flag.StringVar(&o.registry, "registry", "https://registry.npmjs.org", "registry to record from")
	flag.Var(&o.extras, "extra", "extra package to record, repeatable: `name` (packument only) or name@version (packument and that version's tarball)")
	flag.IntVar(&o.concurrency, "concurrency", 6, "parallel downloads")
	flag.BoolVar(&o.prune, "prune", true, "delete packuments and tarballs in -out that this run did not record")
	flag.BoolVar(&o.force, "force", false, "download tarballs again even if a verified copy exists")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "overall time limit")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("record: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// want is what to record: package name -> set of versions whose tarballs are
// needed (possibly empty: packument only).
type want map[string]map[string]bool

func (w want) add(name, version string) {
	if w[name] == nil {
		w[name] = map[string]bool{}
	}
	if version != "" {
		w[name][version] = true
	}
}

// lockEntry is the part of a lockfile "packages" entry the recorder uses.
type lockEntry struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Resolved  string `json:"resolved"`
	Integrity string `json:"integrity"`
	Link      bool   `json:"link"`
}

func run(ctx context.Context, o options) error {
	w := want{}
	lockIntegrity := map[string]string{} // name@version -> integrity from the lockfile
	if o.lockfile != "" {
		entries, err := readLockfile(o.lockfile)
		if err != nil {
			return err
		}
		for key, e := range entries {
			if key == "" || e.Link {
				continue
			}
			if e.Resolved != "" && !strings.HasPrefix(e.Resolved, "https://") && !strings.HasPrefix(e.Resolved, "http://") {
				log.Printf("skipping %s: not a registry dependency (%s)", key, e.Resolved)
				continue
			}
			name := e.Name
			if name == "" {
				name = nameFromLockKey(key)
			}
			if name == "" || e.Version == "" {
				return fmt.Errorf("%s: cannot tell name and version of %q", o.lockfile, key)
			}
			w.add(name, e.Version)
			if e.Integrity != "" {
				lockIntegrity[name+"@"+e.Version] = e.Integrity
			}
		}
	}
	for _, x := range o.extras {
		name, version := splitSpec(x)
		if name == "" {
			return fmt.Errorf("bad -extra %q", x)
		}
		w.add(name, version)
	}
	if len(w) == 0 {
		return errors.New("nothing to record: give -lockfile and/or -extra")
	}

	r := &recorder{
		o:      o,
		client: &http.Client{Timeout: 5 * time.Minute},
		base:   strings.TrimRight(o.registry, "/"),
	}
	if err := os.MkdirAll(filepath.Join(o.out, "packuments"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.out, "tarballs"), 0o755); err != nil {
		return err
	}

	names := make([]string, 0, len(w))
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)

	var (
		mu       sync.Mutex
		errs     []error
		written  = map[string]bool{} // paths relative to o.out
		tarballs int
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(1, o.concurrency))
	)
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			files, err := r.recordPackage(ctx, name, w[name], lockIntegrity)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				return
			}
			for _, f := range files {
				written[f] = true
				if strings.HasPrefix(f, "tarballs/") {
					tarballs++
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if o.prune {
		if err := prune(o.out, written); err != nil {
			return err
		}
	}
	log.Printf("recorded %d packuments and %d tarballs into %s", len(names), tarballs, o.out)
	return nil
}

func readLockfile(p string) (map[string]lockEntry, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var lf struct {
		LockfileVersion int                  `json:"lockfileVersion"`
		Packages        map[string]lockEntry `json:"packages"`
	}
	if err := json.Unmarshal(b, &lf); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if lf.LockfileVersion < 2 || lf.Packages == nil {
		return nil, fmt.Errorf("%s: need lockfileVersion 2 or 3 with a \"packages\" section", p)
	}
	return lf.Packages, nil
}

// nameFromLockKey turns "node_modules/a/node_modules/@s/b" into "@s/b".
func nameFromLockKey(key string) string {
	i := strings.LastIndex(key, "node_modules/")
	if i < 0 {
		return ""
	}
	return key[i+len("node_modules/"):]
}

// splitSpec splits "name@version" / "@scope/name@version" / "name".
func splitSpec(s string) (name, version string) {
	at := strings.LastIndex(s, "@")
	if at <= 0 { // no version, or only the scope's "@"
		return s, ""
	}
	return s[:at], s[at+1:]
}

// Escape returns the on-disk form of a package name: the scope separator "/"
// becomes "%2f".
func escape(name string) string { return strings.Replace(name, "/", "%2f", 1) }

type recorder struct {
	o      options
	client *http.Client
	base   string
}

type versionDoc struct {
	Version string `json:"version"`
	Dist    struct {
		Tarball   string `json:"tarball"`
		Integrity string `json:"integrity"`
		Shasum    string `json:"shasum"`
	} `json:"dist"`
}

// recordPackage records one packument and the requested tarballs. It returns
// the written paths relative to the output directory, slash-separated.
func (r *recorder) recordPackage(ctx context.Context, name string, versions map[string]bool, lockIntegrity map[string]string) ([]string, error) {
	u := r.base + "/" + escape(name)
	body, err := r.get(ctx, u, "application/json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Name     string                `json:"name"`
		Versions map[string]versionDoc `json:"versions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("packument is not JSON: %w", err)
	}
	if doc.Name != name {
		return nil, fmt.Errorf("packument name is %q", doc.Name)
	}
	rel := "packuments/" + escape(name) + ".json.gz"
	if err := writeGzip(filepath.Join(r.o.out, filepath.FromSlash(rel)), body); err != nil {
		return nil, err
	}
	files := []string{rel}

	vs := make([]string, 0, len(versions))
	for v := range versions {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	for _, v := range vs {
		vd, ok := doc.Versions[v]
		if !ok {
			return nil, fmt.Errorf("version %s is not in the packument", v)
		}
		if li := lockIntegrity[name+"@"+v]; li != "" && vd.Dist.Integrity != "" && li != vd.Dist.Integrity {
			return nil, fmt.Errorf("%s: lockfile integrity %s differs from packument %s", v, li, vd.Dist.Integrity)
		}
		tu, err := url.Parse(vd.Dist.Tarball)
		if err != nil || tu.Path == "" {
			return nil, fmt.Errorf("%s: bad dist.tarball %q", v, vd.Dist.Tarball)
		}
		basename := path.Base(tu.Path)
		if basename == "." || basename == "/" || basename == ".." {
			return nil, fmt.Errorf("%s: bad dist.tarball %q", v, vd.Dist.Tarball)
		}
		trel := "tarballs/" + escape(name) + "/" + basename
		dst := filepath.Join(r.o.out, filepath.FromSlash(trel))
		if !r.o.force {
			if old, err := os.ReadFile(dst); err == nil && verify(old, vd.Dist.Integrity, vd.Dist.Shasum) == nil {
				files = append(files, trel)
				continue
			}
		}
		tb, err := r.get(ctx, vd.Dist.Tarball, "")
		if err != nil {
			return nil, err
		}
		if err := verify(tb, vd.Dist.Integrity, vd.Dist.Shasum); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", v, vd.Dist.Tarball, err)
		}
		if err := writeFile(dst, tb); err != nil {
			return nil, err
		}
		log.Printf("%s@%s -> %s (%d bytes)", name, v, trel, len(tb))
		files = append(files, trel)
	}
	return files, nil
}

// get fetches u with a few retries. The transport asks for gzip itself and
// so decompresses transparently: the result is the document as sent.
func (r *recorder) get(ctx context.Context, u, accept string) ([]byte, error) {
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", "npmgate-recorder/1 (+https://github.com/npmgate/npmgate)")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := r.client.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			lastErr = err
		case resp.StatusCode == http.StatusOK:
			return b, nil
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			lastErr = fmt.Errorf("GET %s: %s", u, resp.Status)
		default:
			return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	return nil, lastErr
}

// verify checks b against an SRI string (one or more "algo-base64" tokens;
// every recognised token must match and at least one must be recognised) and
// against a hex sha1 shasum when present.
func verify(b []byte, integrity, shasum string) error {
	checked := false
	for _, tok := range strings.Fields(integrity) {
		algo, want, ok := strings.Cut(tok, "-")
		if !ok {
			continue
		}
		if i := strings.IndexByte(want, '?'); i >= 0 { // SRI options
			want = want[:i]
		}
		var h hash.Hash
		switch algo {
		case "sha512":
			h = sha512.New()
		case "sha384":
			h = sha512.New384()
		case "sha256":
			h = sha256.New()
		case "sha1":
			h = sha1.New()
		default:
			continue
		}
		h.Write(b)
		if got := base64.StdEncoding.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("integrity mismatch: want %s-%s, got %s-%s", algo, want, algo, got)
		}
		checked = true
	}
	if shasum != "" {
		sum := sha1.Sum(b)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, shasum) {
			return fmt.Errorf("shasum mismatch: want %s, got %s", shasum, got)
		}
		checked = true
	}
	if !checked {
		return errors.New("no integrity or shasum to check against")
	}
	return nil
}

// writeGzip stores b gzip-compressed. The gzip header carries no name or
// time, so recording the same bytes twice gives the same file.
func writeGzip(dst string, b []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return writeFile(dst, buf.Bytes())
}

// writeFile writes atomically: a temporary file in the same directory,
// renamed into place.
func writeFile(dst string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".record-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// prune removes files under packuments/ and tarballs/ that were not written
// in this run, and then empty directories.
func prune(out string, keep map[string]bool) error {
	for _, sub := range []string{"packuments", "tarballs"} {
		root := filepath.Join(out, sub)
		var dirs []string
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(out, p)
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != root {
					dirs = append(dirs, p)
				}
				return nil
			}
			if !keep[filepath.ToSlash(rel)] {
				log.Printf("pruning %s", filepath.ToSlash(rel))
				return os.Remove(p)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if ents, err := os.ReadDir(dirs[i]); err == nil && len(ents) == 0 {
				os.Remove(dirs[i])
			}
		}
	}
	return nil
}
