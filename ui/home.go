package ui

import (
	"context"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/feed"
)

// feedSummary is one feed on the home page.
type feedSummary struct {
	Name       string
	URL        string // the registry URL to give npm
	Default    bool
	Local      int
	Cached     int
	Connectors []connectorSummary
	// Rules are the feed's policy in words, per connector (a
	// connector's rules and then the feed's).
	OwnedScopes []string
}

type connectorSummary struct {
	Name   string
	URL    string
	Cached int
	Rules  []string
}

func (u *UI) serveHome(ctx *fasthttp.RequestCtx, rc context.Context, p *auth.Principal) error {
	pg := u.newPage(p, "Feeds", nil)
	var feeds []feedSummary
	for _, name := range pg.Feeds {
		feeds = append(feeds, u.summary(ctx, rc, u.d.Feeds[name]))
	}
	pg.Data = feeds
	return u.render(ctx, "home", pg)
}

func (u *UI) summary(ctx *fasthttp.RequestCtx, rc context.Context, f *feed.Feed) feedSummary {
	s := feedSummary{Name: f.Name, Default: f.Name == u.d.Default, OwnedScopes: f.OwnedScopes}
	if base, err := u.d.BaseURL(ctx, u.mount(f.Name)); err == nil {
		s.URL = base + "/"
	}
	s.Local = len(u.index.local(rc, f))
	pol := f.Rules.Load()
	for i, c := range f.Connectors {
		cs := connectorSummary{Name: c.Name, URL: c.Config.URL, Cached: len(u.index.cached(rc, c.Name))}
		if i < len(pol.PerConnector) {
			cs.Rules = pol.PerConnector[i].Describe()
		}
		s.Cached += cs.Cached
		s.Connectors = append(s.Connectors, cs)
	}
	return s
}
