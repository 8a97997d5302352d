package ui

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
)

// searchPage is how many results a page of search shows.
const searchPage = 20

// indexTTL is how long a connector's list of cached packages is used
// before its snapshots are walked again.
const indexTTL = 5 * time.Second

// entry is one package the search knows.
type entry struct {
	Name, Description, Version string
	Keywords                   []string
	hay                        string // lower-case name, description and keywords
}

// cachedIndex lists the packages each connector has a snapshot of, read
// from the snapshots themselves: nothing is asked upstream, so what a
// viewer searches for never leaves the server. It has its own lock: the
// UI never waits on the npm API's.
type cachedIndex struct {
	st cache.Store
	mu sync.Mutex
	by map[string]*connIndex
}

type connIndex struct {
	walked  time.Time
	entries map[string]indexed // by snapshot key
}

type indexed struct {
	mod time.Time
	e   entry
}

func newCachedIndex(st cache.Store) *cachedIndex {
	return &cachedIndex{st: st, by: map[string]*connIndex{}}
}

// cached is every package connector has a snapshot of, by name.
func (ix *cachedIndex) cached(ctx context.Context, connector string) []entry {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ci := ix.by[connector]
	if ci == nil {
		ci = &connIndex{entries: map[string]indexed{}}
		ix.by[connector] = ci
	}
	if ix.st != nil && time.Since(ci.walked) > indexTTL {
		ix.walk(ctx, connector, ci)
	}
	out := make([]entry, 0, len(ci.entries))
	for _, it := range ci.entries {
		out = append(out, it.e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// walk brings a connector's list up to date, reading only the
// snapshots that changed since the last walk.
func (ix *cachedIndex) walk(ctx context.Context, connector string, ci *connIndex) {
	prefix := strings.TrimSuffix(cache.SnapshotKey(connector, "x"), "x.json")
	seen := map[string]bool{}
	_ = ix.st.Walk(ctx, prefix, func(info cache.Info) error {
		if !strings.HasSuffix(info.Key, ".json") {
			return nil
		}
		seen[info.Key] = true
		if old, ok := ci.entries[info.Key]; ok && old.mod.Equal(info.ModTime) {
			return nil
		}
		if e, ok := ix.read(ctx, info.Key); ok {
			ci.entries[info.Key] = indexed{mod: info.ModTime, e: e}
		}
		return nil
	})
	for k := range ci.entries {
		if !seen[k] {
			delete(ci.entries, k)
		}
	}
	ci.walked = time.Now()
}

// read takes a snapshot's name, description, keywords and latest version.
func (ix *cachedIndex) read(ctx context.Context, key string) (entry, bool) {
	rc, _, err := ix.st.Get(ctx, key)
	if err != nil {
		return entry{}, false
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	if _, err := br.ReadSlice('\n'); err != nil { // the snapshot's header line
		return entry{}, false
	}
	var doc struct {
		Name        string                     `json:"name"`
		Description string                     `json:"description"`
		Keywords    []string                   `json:"keywords"`
		DistTags    map[string]string          `json:"dist-tags"`
		Versions    map[string]json.RawMessage `json:"versions"`
	}
	if json.NewDecoder(br).Decode(&doc) != nil || doc.Name == "" {
		return entry{}, false
	}
	latest := doc.DistTags["latest"]
	if doc.Description == "" || doc.Keywords == nil {
		// Many documents say it only in their versions.
		var v struct {
			Description string   `json:"description"`
			Keywords    []string `json:"keywords"`
		}
		if json.Unmarshal(doc.Versions[latest], &v) == nil {
			doc.Description = cmp.Or(doc.Description, v.Description)
			if doc.Keywords == nil {
				doc.Keywords = v.Keywords
			}
		}
	}
	return newEntry(doc.Name, doc.Description, latest, doc.Keywords), true
}

func newEntry(name, description, version string, keywords []string) entry {
	return entry{Name: name, Description: description, Version: version, Keywords: keywords,
		hay: strings.ToLower(name + " " + description + " " + strings.Join(keywords, " "))}
}

// local is every package published to f.
func (ix *cachedIndex) local(ctx context.Context, f *feed.Feed) []entry {
	objs, _ := f.SearchLocal(ctx, "")
	out := make([]entry, len(objs))
	for i, o := range objs {
		out[i] = newEntry(o.Package.Name, o.Package.Description, o.Package.Version, o.Package.Keywords)
	}
	return out
}

// result is one line of search results.
type result struct {
	Feed, Name, Description, Version string
	// Source is "local" or the connector the package was cached from.
	Source string
	URL    string
}

type searchData struct {
	Results    []result
	Total      int
	Page       int
	Prev, Next string
}

func (u *UI) serveSearch(ctx *fasthttp.RequestCtx, rc context.Context, p *auth.Principal) error {
	args := ctx.QueryArgs()
	q := strings.TrimSpace(string(args.Peek("q")))
	feedName := string(args.Peek("feed"))
	pageNo, _ := strconv.Atoi(string(args.Peek("page")))
	pageNo = max(pageNo, 1)
	pg := u.newPage(p, "Search", nil)
	pg.Query, pg.Feed = q, feedName
	feeds := pg.Feeds
	if feedName != "" {
		if _, err := u.readable(feedName, p); err != nil {
			return err
		}
		feeds = []string{feedName}
	}
	all := u.search(rc, feeds, strings.Fields(strings.ToLower(q)))
	d := &searchData{Total: len(all), Page: pageNo}
	from := min((pageNo-1)*searchPage, len(all))
	d.Results = all[from:min(from+searchPage, len(all))]
	link := func(n int) string {
		v := fasthttp.AcquireArgs()
		defer fasthttp.ReleaseArgs(v)
		v.Set("q", q)
		if feedName != "" {
			v.Set("feed", feedName)
		}
		v.Set("page", strconv.Itoa(n))
		return Prefix + "search?" + v.String()
	}
	if pageNo > 1 {
		d.Prev = link(pageNo - 1)
	}
	if from+searchPage < len(all) {
		d.Next = link(pageNo + 1)
	}
	pg.Data = d
	return u.render(ctx, "search", pg)
}

// search matches every word against the local and cached packages of
// feeds; a package is listed once per feed, from where the feed would
// serve it first (local before connectors, connectors in order).
func (u *UI) search(ctx context.Context, feeds []string, words []string) []result {
	var out []result
	for _, name := range feeds {
		f := u.d.Feeds[name]
		seen := map[string]bool{}
		pol := f.Rules.Load()
		add := func(es []entry, source string, conn int) {
			for _, e := range es {
				if seen[e.Name] || !matchesAll(e.hay, words) {
					continue
				}
				// A name the feed's policy refuses, or a local one, is
				// not served from this connector.
				if conn >= 0 && (!pol.PerConnector[conn].Name(e.Name).Allowed || f.Claimed(e.Name)) {
					continue
				}
				seen[e.Name] = true
				out = append(out, result{Feed: name, Name: e.Name, Description: e.Description, Version: e.Version, Source: source, URL: packageURL(name, e.Name)})
			}
		}
		add(u.index.local(ctx, f), "local", -1)
		for i, c := range f.Connectors {
			add(u.index.cached(ctx, c.Name), c.Name, i)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Feed < out[j].Feed
	})
	return out
}

func matchesAll(hay string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

// packageURL is a package's page in the UI.
func packageURL(feedName, name string) string {
	return Prefix + "package/" + feedName + "/" + name
}
