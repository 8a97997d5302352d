// Package source keeps an OSV database fresh: it loads a path or
// downloads a URL (conditional GET, a cache on disk), swaps a new
// database in atomically and keeps the last good one when a refresh
// fails. Package osv, which it builds on, stays free of I/O but files.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/npmgate/npmgate/osv"
)

// Options say where a database comes from.
type Options struct {
	// Location is a path (zip, directory or .json) or an http(s) URL of
	// a zip export.
	Location string
	// CacheDir keeps the last good download of a URL and its validators,
	// so that a restart while the URL is down still has a database.
	// Empty: downloads go to a temporary file and nothing survives.
	CacheDir string
	Limits   osv.Limits
	// Client fetches a URL; nil is a client with a 10 minute timeout.
	Client *http.Client
	// MaxDownload bounds the zip's compressed size (default 1 GiB; the
	// npm export is a few hundred MiB).
	MaxDownload int64
	UserAgent   string
}

// Status is what a metric and /readyz say of a source.
type Status struct {
	Location    string    // the location, with any credentials removed
	Loaded      bool      // a database is being served
	Records     int       // advisories of the database served
	Malicious   int       // of which malicious-package records
	Skipped     int       // records of its export that were not kept
	FromCache   bool      // it was read from the cache directory at start
	LoadedAt    time.Time // when the database served was built
	LastSuccess time.Time // last refresh that replaced or confirmed it (304)
	LastAttempt time.Time
	LastError   string // of the last refresh, "" when it succeeded
}

// ErrShrunk refuses a download with fewer than half the records of the
// database it would replace: a truncated or wrong file, since OSV never
// withdraws half of an ecosystem at once.
var ErrShrunk = errors.New("osv: the new export has less than half the records of the current one")

// Source is a database that refreshes: readers call Affecting (or DB)
// at any time and see one whole database, the old one until a new one
// is completely built and checked, then the new one (an atomic swap).
// A failed refresh keeps the database it had.
type Source struct {
	opts   Options
	remote bool
	db     atomic.Pointer[osv.DB]
	status atomic.Pointer[Status]

	refreshes [3]atomic.Int64 // by result, for the metric

	mu        sync.Mutex // one refresh at a time; guards what follows
	validator validators
	fileStamp string // size and mtime of a local file (osv.DirStamp of a directory) at its last load
}

// The results of a refresh, as the metric counts them.
const (
	resultOK = iota
	resultNotModified
	resultError
)

// validators are the conditional-GET headers of the database served.
type validators struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// New checks the options; it loads nothing (Start does).
func New(opts Options) (*Source, error) {
	if opts.Location == "" {
		return nil, errors.New("osv source: no source location")
	}
	s := &Source{opts: opts}
	if u, err := url.Parse(opts.Location); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Host == "" {
			return nil, errors.New("osv source: source URL has no host")
		}
		s.remote = true
	}
	if s.opts.Client == nil {
		s.opts.Client = &http.Client{Timeout: 10 * time.Minute}
	}
	if s.opts.MaxDownload <= 0 {
		s.opts.MaxDownload = 1 << 30
	}
	s.status.Store(&Status{Location: redact(opts.Location)})
	return s, nil
}

// redact removes what may be a secret of a URL: user information and the
// query (a signed URL's token).
func redact(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return loc
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// DB is the database served, nil before the first good load.
func (s *Source) DB() *osv.DB { return s.db.Load() }

// Affecting asks the database served; with none yet, nothing is affected.
func (s *Source) Affecting(name, version string) []*osv.Advisory {
	return s.db.Load().Affecting(name, version)
}

// Status is a copy of the source's state.
func (s *Source) Status() Status { return *s.status.Load() }

// Start loads the cached copy of a URL, if any, then refreshes. It fails
// only when no database could be had at all; a refresh error with a
// cached database is in Status.
func (s *Source) Start(ctx context.Context) error {
	if s.remote {
		s.loadCache()
	}
	err := s.Refresh(ctx)
	if err != nil && s.db.Load() == nil {
		return err
	}
	return nil
}

// Run refreshes every interval until ctx ends, calling after (if not
// nil) with each refresh's result; the error is in Status too.
func (s *Source) Run(ctx context.Context, every time.Duration, after func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := s.Refresh(ctx)
			if after != nil {
				after(err)
			}
		}
	}
}

// Refresh loads the location again: a URL with a conditional GET (304
// keeps the database), a path when its size or time changed. The error,
// if any, is also in Status; the database served is then unchanged.
func (s *Source) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var db *osv.DB
	var err error
	if s.remote {
		db, err = s.fetch(ctx)
	} else {
		db, err = s.reload()
	}
	switch {
	case err != nil:
		s.refreshes[resultError].Add(1)
	case db == nil:
		s.refreshes[resultNotModified].Add(1)
	default:
		s.swap(db, false)
		s.refreshes[resultOK].Add(1)
	}
	s.record(err, time.Now())
	return err
}

// swap serves db. (A download that shrank by half was refused before it
// got here; a local path is what the operator put there, and is served
// whatever its size.)
func (s *Source) swap(db *osv.DB, fromCache bool) {
	s.db.Store(db)
	st := s.Status()
	st.Loaded, st.FromCache, st.LoadedAt = true, fromCache, time.Now()
	st.Records, st.Malicious, st.Skipped = db.Stats().Records, db.Stats().Malicious, db.Stats().Skipped()
	s.status.Store(&st)
}

func (s *Source) record(err error, at time.Time) {
	st := s.Status()
	st.LastAttempt = at
	if err != nil {
		st.LastError = err.Error()
	} else {
		st.LastError, st.LastSuccess = "", at
	}
	s.status.Store(&st)
}

// reload reads a local path again, or returns nil when it is unchanged.
func (s *Source) reload() (*osv.DB, error) {
	info, err := os.Stat(s.opts.Location)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", osv.ErrNotFound, s.opts.Location)
	}
	stamp := fmt.Sprint(info.Size(), info.ModTime().UnixNano())
	if info.IsDir() {
		// A directory's own time moves when a file is added or removed,
		// not when one is edited: every file's is looked at.
		if stamp, err = osv.DirStamp(s.opts.Location, s.opts.Limits); err != nil {
			return nil, err
		}
	}
	if stamp == s.fileStamp && s.db.Load() != nil {
		return nil, nil
	}
	db, err := osv.Load(s.opts.Location, s.opts.Limits)
	if err != nil {
		return nil, err
	}
	s.fileStamp = stamp
	return db, nil
}

// cachePaths are the cached zip and its validators, named by a hash of
// the URL so that a changed URL never serves the old one's data.
func (s *Source) cachePaths() (zipPath, metaPath string) {
	h := fnv.New64a()
	h.Write([]byte(s.opts.Location))
	base := filepath.Join(s.opts.CacheDir, fmt.Sprintf("osv-%016x", h.Sum64()))
	return base + ".zip", base + ".json"
}

// loadCache serves the cached copy, if there is a good one.
func (s *Source) loadCache() {
	if s.opts.CacheDir == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	zipPath, metaPath := s.cachePaths()
	db, err := osv.Load(zipPath, s.opts.Limits)
	if err != nil {
		return
	}
	var v validators
	if data, err := readSmall(metaPath); err == nil && json.Unmarshal(data, &v) == nil && v.URL == s.opts.Location {
		s.validator = v
	}
	s.swap(db, true)
}

// fetch downloads the zip with a conditional GET; nil, nil for 304.
func (s *Source) fetch(ctx context.Context) (*osv.DB, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.Location, nil)
	if err != nil {
		return nil, errors.New("osv source: bad source URL")
	}
	if s.opts.UserAgent != "" {
		req.Header.Set("User-Agent", s.opts.UserAgent)
	}
	if s.db.Load() != nil {
		if s.validator.ETag != "" {
			req.Header.Set("If-None-Match", s.validator.ETag)
		}
		if s.validator.LastModified != "" {
			req.Header.Set("If-Modified-Since", s.validator.LastModified)
		}
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("osv source: GET %s: %w", redact(s.opts.Location), cause(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && s.db.Load() != nil:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("osv source: GET %s: status %d", redact(s.opts.Location), resp.StatusCode)
	}
	db, err := s.download(resp)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// cause is the reason of a client error without the URL it names (which
// may hold a token).
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// download writes the body to a temporary file, bounded, reads it as a
// database and, when that succeeds, keeps it as the cached copy.
func (s *Source) download(resp *http.Response) (*osv.DB, error) {
	dir := s.opts.CacheDir
	if dir == "" {
		dir = os.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".osv-download-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, s.opts.MaxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("osv source: GET %s: %w", redact(s.opts.Location), cause(err))
	}
	if n > s.opts.MaxDownload {
		return nil, fmt.Errorf("osv source: GET %s: larger than %d bytes", redact(s.opts.Location), s.opts.MaxDownload)
	}
	db, err := osv.ReadZip(tmp, n, s.opts.Limits)
	if err != nil {
		return nil, err
	}
	v := validators{URL: s.opts.Location, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if cur := s.db.Load(); cur != nil && db.Stats().Records*2 < cur.Stats().Records {
		return nil, fmt.Errorf("%w (%d, was %d)", ErrShrunk, db.Stats().Records, cur.Stats().Records)
	}
	s.validator = v
	if s.opts.CacheDir != "" {
		s.keep(tmp, v)
	}
	return db, nil
}

// keep makes the download the cached copy: synced, then renamed over the
// old one, so a crash leaves one whole copy or the other.
func (s *Source) keep(tmp *os.File, v validators) {
	zipPath, metaPath := s.cachePaths()
	if tmp.Sync() != nil || os.Rename(tmp.Name(), zipPath) != nil {
		return
	}
	meta, _ := json.Marshal(v)
	if f, err := os.CreateTemp(s.opts.CacheDir, ".osv-meta-*"); err == nil {
		_, werr := f.Write(meta)
		if f.Close() == nil && werr == nil {
			_ = os.Rename(f.Name(), metaPath)
		}
		_ = os.Remove(f.Name())
	}
}

// String names the source for logs, without credentials.
func (s *Source) String() string { return "osv " + strings.TrimSpace(redact(s.opts.Location)) }

// readSmall reads a small file (the cache's validators), at most 64 KiB.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		return nil, err
	}
	if len(data) > 64<<10 {
		return nil, errors.New("osv source: validators file too large")
	}
	return data, nil
}
