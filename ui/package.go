package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/internal/vers"
	"github.com/npmgate/npmgate/proxy/npm"
)

// versionsPage is how many versions a package page lists at once.
const versionsPage = 100

// pkgView is a package page without what depends on the request (the
// viewer, the base URL, the page of versions): built once per package
// fingerprint and kept in the memory tier, so a warm page of a 10 MB
// packument is a lookup and a template run over one page of rows.
type pkgView struct {
	Feed, Name  string
	Description string
	Latest      string
	Readme      template.HTML
	Tags        []npm.Tag
	Local       bool
	NameBlocked []string
	Versions    []versionRow
	Blocked     int
	byVersion   map[string]int
}

type versionRow struct {
	Version    string
	Source     string
	Published  string
	License    string
	Size       string
	Deprecated string
	Scripts    bool
	Provenance bool
	Allowed    bool
	Rule       string
	Reason     string
	Until      string
	Tarball    string // the path of the tarball under the feed's mount
	Deps       []dep
	Tags       []string
	at         time.Time
}

type dep struct{ Name, Range, URL string }

// pkgData is what the package template gets.
type pkgData struct {
	*pkgView
	Selected    *versionRow
	Rows        []versionRow
	Page, Pages int
	Prev, Next  string
	Registry    string
	Mount       string
}

func (u *UI) servePackage(ctx *fasthttp.RequestCtx, rc context.Context, p *auth.Principal, feedName, name string) error {
	f, err := u.readable(feedName, p)
	if err != nil {
		return err
	}
	if npm.ValidateName(name) != nil {
		return ErrNotFound
	}
	var admit feed.AdmitFunc
	if u.d.Admit != nil {
		admit = func() (func(error), error) { return u.d.Admit(ctx) }
	}
	v, err := u.view(rc, f, admit, name)
	if err != nil {
		return err
	}
	d := &pkgData{pkgView: v, Mount: u.mount(feedName)}
	if base, err := u.d.BaseURL(ctx, d.Mount); err == nil {
		d.Registry = base + "/"
	}
	want := string(ctx.QueryArgs().Peek("v"))
	if want == "" {
		want = v.Latest
	}
	if i, ok := v.byVersion[want]; ok {
		d.Selected = &v.Versions[i]
	} else if len(v.Versions) > 0 {
		d.Selected = &v.Versions[0]
	}
	d.Pages = max(1, (len(v.Versions)+versionsPage-1)/versionsPage)
	d.Page = min(max(ctx.QueryArgs().GetUintOrZero("page"), 1), d.Pages)
	from := (d.Page - 1) * versionsPage
	d.Rows = v.Versions[from:min(from+versionsPage, len(v.Versions))]
	base := packageURL(feedName, name) + "?page="
	if d.Page > 1 {
		d.Prev = base + strconv.Itoa(d.Page-1)
	}
	if d.Page < d.Pages {
		d.Next = base + strconv.Itoa(d.Page+1)
	}
	pg := u.newPage(p, name, d)
	pg.Feed = feedName
	return u.render(ctx, "package", pg)
}

// view is the package's view model: from the memory tier when the
// package has not changed since it was built.
func (u *UI) view(ctx context.Context, f *feed.Feed, admit feed.AdmitFunc, name string) (*pkgView, error) {
	key, expires, err := f.ViewKey(ctx, admit, name)
	if err != nil {
		return nil, err
	}
	if v := u.cachedView(key); v != nil {
		return v, nil
	}
	// Many viewers of one new package (a link in a chat) build its view
	// once: a build renders the README, which is bounded but not free.
	v, err, _ := u.builds.Do(key, func() (any, error) {
		if v := u.cachedView(key); v != nil {
			return v, nil
		}
		pv, err := f.View(ctx, name)
		if err != nil {
			return nil, err
		}
		v := buildView(f.Name, u.mount(f.Name), pv)
		u.d.Mem.Set(key, &cache.Item{Expires: expires, Value: v}, v.cost())
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*pkgView), nil
}

func (u *UI) cachedView(key string) *pkgView {
	if it, ok := u.d.Mem.Get(key); ok {
		if v, ok := it.Value.(*pkgView); ok {
			return v
		}
	}
	return nil
}

func (v *pkgView) cost() int64 {
	c := int64(len(v.Readme)) + 512
	for i := range v.Versions {
		c += 256 + int64(len(v.Versions[i].Reason)+len(v.Versions[i].Deprecated)) + int64(len(v.Versions[i].Deps))*64
	}
	return c
}

// versionMeta is what a version row shows beyond the policy's facts.
type versionMeta struct {
	Deprecated json.RawMessage `json:"deprecated"`
	Dist       struct {
		UnpackedSize int64 `json:"unpackedSize"`
	} `json:"dist"`
	Dependencies map[string]string `json:"dependencies"`
}

func buildView(feedName, mount string, pv *feed.PackageView) *pkgView {
	v := &pkgView{Feed: feedName, Name: pv.Name, Local: pv.Local, byVersion: map[string]int{}}
	for c, why := range pv.NameBlocked {
		v.NameBlocked = append(v.NameBlocked, c+": "+why)
	}
	sort.Strings(v.NameBlocked)
	if len(pv.Docs) > 0 {
		top := pv.Docs[0]
		v.Tags = top.DistTags
		v.Latest = top.Tag("latest")
		// The document's description and README, else its latest
		// version's (local packages and many mirrors keep them there).
		var latest struct {
			Description string `json:"description"`
			Readme      string `json:"readme"`
		}
		if lv := top.Version(v.Latest); lv != nil {
			_ = json.Unmarshal(lv.Raw(), &latest)
		}
		v.Description = cmp.Or(jsonString(top.Member("description")), latest.Description)
		v.Readme = renderReadme(cmp.Or(jsonString(top.Member("readme")), latest.Readme))
	}
	tags := map[string][]string{}
	for _, t := range v.Tags {
		tags[t.Version] = append(tags[t.Version], t.Name)
	}
	for _, vv := range pv.Versions {
		if _, dup := v.byVersion[vv.V.Version]; dup {
			continue // a version an earlier source has is served from it
		}
		row := newRow(feedName, mount, pv.Name, vv)
		row.Tags = tags[row.Version]
		if !row.Allowed {
			v.Blocked++
		}
		v.byVersion[row.Version] = len(v.Versions)
		v.Versions = append(v.Versions, row)
	}
	// Highest first, by semver precedence (a backport to an old line is
	// listed with its line, not above the newest release); keys that are
	// not semver last, newest first.
	sort.SliceStable(v.Versions, func(i, j int) bool { return versionBefore(&v.Versions[i], &v.Versions[j]) })
	for i := range v.Versions {
		v.byVersion[v.Versions[i].Version] = i
	}
	return v
}

func newRow(feedName, mount, name string, vv feed.VersionView) versionRow {
	row := versionRow{
		Version: vv.V.Version, Source: vv.Connector, License: vv.Facts.License,
		Scripts: vv.Facts.HasInstallScript, Provenance: vv.V.Provenance(),
		Allowed: vv.Decision.Allowed, Rule: vv.Decision.Rule, Reason: vv.Decision.Reason,
		at: vv.Published, Tarball: mount + "/" + name + "/-/" + npm.TarballFile(name, vv.V.Version),
	}
	if row.Source == "" {
		row.Source = "local"
	}
	if !vv.Published.IsZero() {
		row.Published = vv.Published.UTC().Format("2006-01-02 15:04 UTC")
	}
	if !vv.Until.IsZero() {
		row.Until = vv.Until.UTC().Format("2006-01-02 15:04 UTC")
	}
	var m versionMeta
	if json.Unmarshal(vv.V.Raw(), &m) == nil {
		if len(m.Deprecated) > 0 && m.Deprecated[0] == '"' {
			row.Deprecated = jsonString(m.Deprecated)
		}
		if m.Dist.UnpackedSize > 0 {
			row.Size = humanSize(m.Dist.UnpackedSize)
		}
		for dn, r := range m.Dependencies {
			d := dep{Name: dn, Range: r}
			if npm.ValidateName(dn) == nil {
				d.URL = packageURL(feedName, dn)
			}
			row.Deps = append(row.Deps, d)
		}
		sort.Slice(row.Deps, func(i, j int) bool { return row.Deps[i].Name < row.Deps[j].Name })
	}
	return row
}

func jsonString(raw []byte) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return strconv.FormatInt(n, 10) + " B"
}

// versionBefore orders the version table: valid semver versions by
// precedence, highest first, then the rest by publish time.
func versionBefore(a, b *versionRow) bool {
	va, okA := vers.Parse(a.Version)
	vb, okB := vers.Parse(b.Version)
	switch {
	case okA && okB:
		return vers.Compare(&va, &vb) > 0
	case okA != okB:
		return okA
	}
	return a.at.After(b.at)
}
