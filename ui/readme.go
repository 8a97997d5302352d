package ui

import (
	"bytes"
	"html/template"
	"net/url"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
)

// maxReadme bounds the README rendered; the rest is cut (npm itself keeps
// READMEs under 64 KiB in abbreviated documents, but full ones can be
// large).
const maxReadme = 512 << 10

// markdown renders READMEs as GitHub does (tables, strikethrough, task
// lists, autolinks). Raw HTML is passed through, as npm's site shows it,
// and made safe by the sanitiser: goldmark alone is no defence.
var markdown = goldmark.New(
	goldmark.WithExtensions(extension.GFM),
	goldmark.WithRendererOptions(html.WithUnsafe()),
)

// sanitiser is bluemonday's policy for user content, plus: no image is
// loaded from elsewhere without the viewer's consent (every img src
// becomes a local placeholder, the original kept as a link's title), and
// every link is rel="nofollow noreferrer", opening other sites in a new
// tab with noopener.
var sanitiser = func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	p.RequireParseableURLs(true)
	p.AllowURLSchemes("http", "https", "mailto")
	p.RewriteSrc(func(u *url.URL) {
		*u = url.URL{Path: Prefix + "static/no-image.svg"}
	})
	return p
}()

// renderReadme turns a package's README into HTML that cannot run script,
// load anything from another origin or escape its container.
func renderReadme(md string) template.HTML {
	if md == "" {
		return ""
	}
	if len(md) > maxReadme {
		md = md[:maxReadme]
	}
	var b bytes.Buffer
	if err := markdown.Convert([]byte(md), &b); err != nil {
		return template.HTML(template.HTMLEscapeString(md))
	}
	return template.HTML(sanitiser.SanitizeBytes(b.Bytes()))
}
