package warm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/npmgate/npmgate/proxy/npm"
)

// Status is what warming did for one package.
type Status int

// Statuses.
const (
	// Fetched: npmgate did not have the tarball and fetched it upstream
	// (X-Npmgate-Cache: miss, or no such header).
	Fetched Status = iota + 1
	// Present: npmgate already had the tarball (X-Npmgate-Cache: hit).
	Present
	// Failed: the packument or the tarball could not be had; Result.Err
	// says why.
	Failed
)

func (s Status) String() string {
	switch s {
	case Fetched:
		return "fetched"
	case Present:
		return "present"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Result is the outcome for one package.
type Result struct {
	Package
	Status Status
	Err    error
}

// Report is the outcome of a run.
type Report struct {
	// Results are in the order of the packages given to Run.
	Results                  []Result
	Fetched, Present, Failed int
	Elapsed                  time.Duration
}

// Options tune a run.
type Options struct {
	// Concurrency bounds the packages in flight; default 8.
	Concurrency int
	// Token is sent as "Authorization: Bearer" to the base URL's origin,
	// and only there (as npm does).
	Token string
	// Retries is how many times a request is retried after a network error
	// or a 5xx answer, with backoff.
	Retries int
	// Client makes the requests; default: one with sane timeouts that
	// honours the proxy variables.
	Client *http.Client
	// Progress, when set, receives progress: an updating line when
	// Terminal, else a plain line every tenth or so.
	Progress io.Writer
	Terminal bool
	// Version is npmgate's version, sent as User-Agent: npmgate-warm/Version;
	// default "dev".
	Version string
}

// cacheHeader is npmgate's cache result header.
const cacheHeader = "X-Npmgate-Cache"

// maxPackument bounds a packument read (the largest abbreviated documents
// on the public registry are a few tens of MB).
const maxPackument = 512 << 20

// Run warms npmgate's cache with pkgs through base, the URL of a feed
// (http://host:4873/ or http://host:4873/npm/{feed}/): for each package it
// gets the abbreviated packument, then the tarball the packument lists for
// the version, reading it through and checking it against the lockfile's
// integrity (else the packument's). It returns an error only when base is
// not a URL; failures of packages are in the report.
func Run(ctx context.Context, base string, pkgs []Package, opts Options) (*Report, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http or https URL", base)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q: user info, query and fragment are not allowed", base)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	w := &warmer{base: u, opts: opts, docs: map[string]*packument{}}
	if w.opts.Concurrency <= 0 {
		w.opts.Concurrency = 8
	}
	if w.opts.Client == nil {
		w.opts.Client = defaultClient(w.opts.Concurrency)
	}
	if w.opts.Version == "" {
		w.opts.Version = "dev"
	}
	start := time.Now()
	rep := &Report{Results: make([]Result, len(pkgs))}
	prog := newProgress(opts.Progress, opts.Terminal, len(pkgs))
	g := new(errgroup.Group)
	g.SetLimit(w.opts.Concurrency)
	for i, p := range pkgs {
		g.Go(func() error {
			r := Result{Package: p}
			if err := ctx.Err(); err != nil {
				r.Status, r.Err = Failed, err
			} else {
				r.Status, r.Err = w.warm(ctx, p)
			}
			rep.Results[i] = r
			prog.done(r.Status)
			return nil
		})
	}
	g.Wait()
	prog.finish()
	for _, r := range rep.Results {
		switch r.Status {
		case Fetched:
			rep.Fetched++
		case Present:
			rep.Present++
		default:
			rep.Failed++
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func defaultClient(concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	tr.ResponseHeaderTimeout = 5 * time.Minute // npmgate may be waiting for its upstream
	return &http.Client{
		Transport: tr,
		// A whole tarball: the default tarball_timeout of a connector.
		Timeout: 10 * time.Minute,
	}
}

type warmer struct {
	base *url.URL
	opts Options
	mu   sync.Mutex
	docs map[string]*packument
}

// packument is what a run needs of one packument, fetched once per name
// however many versions the lockfile has.
type packument struct {
	once     sync.Once
	versions map[string]npm.Dist
	err      error
}

// warm does one package.
func (w *warmer) warm(ctx context.Context, p Package) (Status, error) {
	if err := npm.ValidateName(p.Name); err != nil {
		return Failed, err
	}
	if err := npm.ValidateVersionOrTag(p.Version); err != nil {
		return Failed, err
	}
	doc := w.packument(ctx, p.Name)
	if doc.err != nil {
		return Failed, doc.err
	}
	dist, ok := doc.versions[p.Version]
	if !ok {
		return Failed, fmt.Errorf("version %s is not in the feed's packument (unpublished, or blocked by a filter: npmgate explain %s)", p.Version, p.Name)
	}
	tarURL := w.tarballURL(p, dist.Tarball)
	want, from := p.Integrity, "the lockfile"
	if _, err := npm.ParseDigest(npm.Dist{Integrity: want}); err != nil {
		want, from = "", ""
		if d, err := npm.ParseDigest(dist); err == nil {
			want, from = d.String(), "the packument"
		}
	}
	return w.tarball(ctx, tarURL, want, from)
}

// packument returns the versions of name, getting the abbreviated
// document once.
func (w *warmer) packument(ctx context.Context, name string) *packument {
	w.mu.Lock()
	doc, ok := w.docs[name]
	if !ok {
		doc = &packument{}
		w.docs[name] = doc
	}
	w.mu.Unlock()
	doc.once.Do(func() {
		doc.versions, doc.err = w.getPackument(ctx, name)
	})
	return doc
}

func (w *warmer) getPackument(ctx context.Context, name string) (map[string]npm.Dist, error) {
	u := w.base.String() + escapeName(name)
	resp, err := w.get(ctx, u, "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8")
	if err != nil {
		return nil, fmt.Errorf("packument: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Versions map[string]struct {
			Dist struct {
				Tarball   string `json:"tarball"`
				Integrity string `json:"integrity"`
				Shasum    string `json:"shasum"`
			} `json:"dist"`
		} `json:"versions"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPackument)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("packument: not a JSON packument: %v", err)
	}
	out := make(map[string]npm.Dist, len(doc.Versions))
	for v, m := range doc.Versions {
		out[v] = npm.Dist{Tarball: m.Dist.Tarball, Integrity: m.Dist.Integrity, Shasum: m.Dist.Shasum}
	}
	return out, nil
}

// escapeName is a name as a registry path segment: @scope%2fname.
func escapeName(name string) string {
	if scope, pkg, ok := npm.SplitScope(name); ok {
		return "@" + scope + "%2f" + pkg
	}
	return name
}

// tarballURL is the packument's dist.tarball for the version, resolved
// against the base, else the conventional {base}{name}/-/{unscoped}-{version}.tgz.
func (w *warmer) tarballURL(p Package, advertised string) string {
	if advertised != "" {
		if u, err := w.base.Parse(advertised); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return u.String()
		}
	}
	return w.base.String() + p.Name + "/-/" + npm.TarballFile(p.Name, p.Version)
}

// tarball reads a tarball through, checking it against want (an SRI
// string, or "" for no check).
func (w *warmer) tarball(ctx context.Context, u, want, from string) (Status, error) {
	resp, err := w.get(ctx, u, "application/octet-stream")
	if err != nil {
		return Failed, fmt.Errorf("tarball %s: %w", u, err)
	}
	defer resp.Body.Close()
	var h hash.Hash
	var d npm.Digest
	if want != "" {
		d, _ = npm.ParseDigest(npm.Dist{Integrity: want})
		h = d.NewHash()
	}
	dst := io.Discard
	if h != nil {
		dst = h
	}
	if _, err := io.Copy(dst, resp.Body); err != nil {
		return Failed, fmt.Errorf("tarball %s: reading: %w", u, err)
	}
	if h != nil {
		got := h.Sum(nil)
		if string(got) != string(d.Sum) {
			return Failed, fmt.Errorf("tarball %s: integrity mismatch: %s says %s-%s, the tarball is %s-%s",
				u, from, d.Algo, base64.StdEncoding.EncodeToString(d.Sum), d.Algo, base64.StdEncoding.EncodeToString(got))
		}
	}
	if resp.Header.Get(cacheHeader) == "hit" {
		return Present, nil
	}
	return Fetched, nil
}

// get sends a GET, retrying network errors and 5xx answers; any answer but
// 200 is an error that carries the registry's message.
func (w *warmer) get(ctx context.Context, u, accept string) (*http.Response, error) {
	backoff := 250 * time.Millisecond
	for attempt := 0; ; attempt++ {
		resp, err := w.try(ctx, u, accept)
		retry := false
		switch {
		case err != nil:
			retry = ctx.Err() == nil
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
			retry = true
		}
		if err == nil && resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		if err == nil {
			err = statusError(resp)
			resp.Body.Close()
		}
		if !retry || attempt >= w.opts.Retries {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (w *warmer) try(ctx context.Context, u, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "npmgate-warm/"+w.opts.Version)
	if w.opts.Token != "" && sameOrigin(req.URL, w.base) {
		req.Header.Set("Authorization", "Bearer "+w.opts.Token)
	}
	return w.opts.Client.Do(req)
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// statusError describes a non-200 answer, with npm's {"error": "..."}
// message when there is one.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil {
		msg = strings.TrimSpace(e.Error + " " + e.Reason)
	}
	hint := ""
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = " (pass a token that may read the feed: --token)"
	}
	if msg == "" {
		return fmt.Errorf("%s%s", resp.Status, hint)
	}
	return fmt.Errorf("%s: %s%s", resp.Status, msg, hint)
}
