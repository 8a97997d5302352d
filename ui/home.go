package ui

import (
	"context"
	"net/url"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/feed"
)

// feedSummary is one feed on the home page.
type feedSummary struct {
	Name        string
	URL         string // the registry URL to give npm
	Default     bool
	Local       int
	Cached      int
	Connectors  []connectorSummary
	OwnedScopes []string
}

type connectorSummary struct {
	Name   string
	URL    string // without credentials or query
	Cached int
	// Rules are the connector's policy in words: its own rules, then
	// the feed's.
	Rules []string
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
		cs := connectorSummary{Name: c.Name, URL: publicURL(c.Config.URL), Cached: len(u.index.cached(rc, c.Name))}
		if i < len(pol.PerConnector) {
			cs.Rules = pol.PerConnector[i].Describe()
		}
		s.Cached += cs.Cached
		s.Connectors = append(s.Connectors, cs)
	}
	return s
}

// publicURL is a connector's URL as a page may show it: no user
// information (a password could be there), no query, no fragment.
func publicURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
	return u.String()
}
