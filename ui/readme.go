package ui

import (
	"bytes"
	"errors"
	"html/template"
	"net/url"
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// A README is an author's input, rendered by a server other people's
// installs depend on, and Markdown's worst cases grow faster than their
// input: a GFM table pads every row to its header's width (64 KiB of
// "|" lines under a 100-column header made 33 MB of HTML and 1.9 GB of
// garbage), a reference link repeats its destination wherever it is used
// (64 KiB made 179 MB), and deeply nested quotes or brackets cost goldmark
// quadratic time. So a README is cut at maxReadme (past it, the slowest
// of these took seconds and the largest gigabytes), a table is measured
// before it is parsed (maxTableCells), goldmark's output is bounded
// (maxReadmeHTML), and one README is rendered at a time (readmeSlot): a
// hostile package costs at most about a second of one core, once, since
// the page is cached.
const (
	maxReadme     = 64 << 10
	maxTableCells = 50_000
	maxReadmeHTML = 4 << 20
	// maxQuoteDepth bounds block quotes nested in quotes, whose cost in
	// goldmark grows with the square of their depth (and which the HTML
	// step refuses past 512 anyway): no README needs more than a few.
	maxQuoteDepth = 64
)

// readmeSlot lets one README render at a time, so that renders never take
// the core the npm API needs.
var readmeSlot = make(chan struct{}, 1)

// markdown renders READMEs as GitHub does (tables, strikethrough, task
// lists, autolinks). Raw HTML is passed through, as npm's site shows it,
// and made safe by the sanitiser: goldmark alone is no defence.
var markdown = goldmark.New(
	goldmark.WithExtensions(extension.GFM),
	goldmark.WithRendererOptions(gmhtml.WithUnsafe()),
)

// remoteImageClass marks the link an image became (see consentImages): the
// one class the sanitiser lets through, so the stylesheet can show the
// link as a stand-in for the image.
const remoteImageClass = "remote-image"

// sanitiser is bluemonday's policy for user content, plus: every link is
// rel="nofollow noreferrer", opening other sites in a new tab with
// noopener, and links keep the class consentImages gives them (no other
// class: authors do not style the page).
var sanitiser = func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	p.RequireParseableURLs(true)
	p.AllowURLSchemes("http", "https", "mailto")
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^` + remoteImageClass + `$`)).OnElements("a")
	// consentImages leaves no img. Should bluemonday's tokenizer ever see
	// one the tree did not hold, it must still load nothing: its src is
	// emptied, which a browser does not fetch.
	p.RewriteSrc(func(u *url.URL) { *u = url.URL{} })
	return p
}()

// renderReadme turns a package's README into HTML that cannot run script,
// load anything from another origin or escape its container. An image is
// never loaded: it becomes a link the viewer may follow to see it.
func renderReadme(md string) template.HTML {
	if md == "" {
		return ""
	}
	if len(md) > maxReadme {
		// At a line's end, so that no construct is cut in half.
		cut := md[:maxReadme]
		if i := strings.LastIndexByte(cut, '\n'); i > 0 {
			cut = cut[:i+1]
		}
		md = cut
	}
	if cells, depth := measure(md); cells > maxTableCells || depth > maxQuoteDepth {
		return plainReadme(md)
	}
	readmeSlot <- struct{}{}
	defer func() { <-readmeSlot }()
	b := &boundedBuffer{max: maxReadmeHTML}
	if err := markdown.Convert([]byte(md), b); err != nil || b.over {
		return plainReadme(md)
	}
	// The parser refuses markup nested deeper than 512 elements, which no
	// README needs: such a README is shown as its text.
	out, err := consentImages(b.Bytes())
	if err != nil {
		return plainReadme(md)
	}
	return template.HTML(sanitiser.SanitizeBytes(out))
}

// plainReadme is a README shown as its text, for one whose Markdown is
// past what the page renders.
func plainReadme(md string) template.HTML {
	return template.HTML(`<p class="muted">This README is shown as plain text: its Markdown is larger, once rendered, than this page shows.</p><pre class="readme-text">` +
		template.HTMLEscapeString(md) + `</pre>`)
}

// boundedBuffer is goldmark's output, refused past max bytes: writes fail
// from then on, which stops goldmark's buffered writer from copying more.
type boundedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

var errReadmeTooLarge = errors.New("rendered README too large")

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.over || b.Len()+len(p) > b.max {
		b.over = true
		return 0, errReadmeTooLarge
	}
	return b.Buffer.Write(p)
}

// measure bounds what md would cost goldmark, without parsing it. cells
// bounds from above the cells its GFM tables make: in a paragraph (lines
// up to a blank one), from the first line shaped like a delimiter row
// ("|---|:-:|"), every line is a row as wide as the widest such line.
// depth is the deepest nesting of block quotes. Quote and list markers
// before a line are passed over for the first and counted for the second,
// since tables nest in both.
func measure(md string) (cells, depth int) {
	cols := 0
	for line := range strings.Lines(md) {
		prefix := strings.TrimSpace(line)
		t := stripContainers(prefix)
		depth = max(depth, strings.Count(prefix[:len(prefix)-len(t)], ">"))
		if t == "" {
			cols = 0
			continue
		}
		cols = max(cols, delimiterColumns(t))
		cells += cols
	}
	return cells, depth
}

// listMarker is a list item's marker at the start of a line.
var listMarker = regexp.MustCompile(`^(?:[-+*]|[0-9]{1,9}[.)])[ \t]+`)

// stripContainers is a trimmed line without the block quote and list
// markers before its content.
func stripContainers(t string) string {
	for {
		next := strings.TrimLeft(t, "> \t")
		if m := listMarker.FindStringIndex(next); m != nil {
			next = next[m[1]:]
		}
		if next == t {
			return t
		}
		t = next
	}
}

// delimiterColumns is the number of columns of a GFM delimiter row, 0
// when t is not one.
func delimiterColumns(t string) int {
	if !strings.Contains(t, "-") || strings.Trim(t, "|-: \t") != "" {
		return 0
	}
	t = strings.TrimPrefix(strings.TrimSuffix(t, "|"), "|")
	n := 0
	for cell := range strings.SplitSeq(t, "|") {
		c := strings.Trim(strings.TrimSpace(cell), ":")
		if c == "" || strings.Trim(c, "-") != "" {
			return 0
		}
		n++
	}
	return n
}

// readmeContext is where a README's HTML is parsed: inside the page's
// <div class="markdown">, as the browser will see it.
var readmeContext = &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}

// consentImages replaces every image in src, HTML goldmark produced, with
// text saying what it was; an image from an http(s) URL becomes a link to
// it, so loading it is the viewer's choice (the page's CSP would refuse
// it anyway). It works on the parsed tree, not on text, so whatever the
// markup (raw <img>, <image>, <picture>, attributes unquoted), an image
// is found as the browser would find it. The sanitiser still has the last
// word.
func consentImages(src []byte) ([]byte, error) {
	nodes, err := html.ParseFragment(bytes.NewReader(src), readmeContext)
	if err != nil {
		return nil, err
	}
	// Under one parent, so that an image at the top level is replaced
	// as any other.
	root := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	for _, n := range nodes {
		root.AppendChild(n)
	}
	replaceImages(root, false)
	var out bytes.Buffer
	out.Grow(len(src))
	for n := root.FirstChild; n != nil; n = n.NextSibling {
		if err := html.Render(&out, n); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// replaceImages replaces the images under n (n itself included). inLink
// says whether n is inside an <a>: an image there becomes the link's
// text, since anchors must not nest. Each node is visited once.
func replaceImages(n *html.Node, inLink bool) {
	if n.Type != html.ElementNode {
		return
	}
	// By name, whatever the namespace: the sanitiser tells elements apart
	// by name alone.
	if n.Data == "img" {
		n.Parent.InsertBefore(imageStandIn(n, inLink), n)
		n.Parent.RemoveChild(n)
		return
	}
	// The author's classes go: an author's own <a class="remote-image">
	// would pass for one of ours, its text claiming a host its href is
	// not.
	removeAttr(n, "class")
	inLink = inLink || n.Data == "a"
	for c := n.FirstChild; c != nil; {
		next := c.NextSibling
		replaceImages(c, inLink)
		c = next
	}
}

// imageStandIn is what img becomes: a link to a remote image, or the text
// describing it inside a link or when it is not an http(s) URL (relative
// paths point into a repository this server does not serve; data: and
// the rest are not followed).
func imageStandIn(img *html.Node, inLink bool) *html.Node {
	alt := strings.Join(strings.Fields(attr(img, "alt")), " ")
	if alt == "" {
		alt = "untitled"
	}
	u := remoteURL(attr(img, "src"))
	if u == nil {
		return &html.Node{Type: html.TextNode, Data: "Image: " + alt}
	}
	text := &html.Node{Type: html.TextNode, Data: "Image: " + alt + " (from " + strings.ToLower(u.Host) + ")"}
	if inLink {
		return text
	}
	a := &html.Node{Type: html.ElementNode, Data: "a", DataAtom: atom.A, Attr: []html.Attribute{
		{Key: "class", Val: remoteImageClass},
		{Key: "href", Val: u.String()},
		{Key: "rel", Val: "nofollow noreferrer noopener"},
		{Key: "target", Val: "_blank"},
	}}
	a.AppendChild(text)
	return a
}

// remoteURL is src when it is an absolute http or https URL with a host,
// else nil. Surrounding whitespace is dropped, as browsers drop it.
func remoteURL(src string) *url.URL {
	u, err := url.Parse(strings.Trim(src, " \t\n\f\r"))
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil
	}
	return u
}

// attr is the value of n's attribute key, "" when it has none.
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

// removeAttr removes every attribute key of n.
func removeAttr(n *html.Node, key string) {
	kept := n.Attr[:0]
	for _, a := range n.Attr {
		if a.Key != key {
			kept = append(kept, a)
		}
	}
	n.Attr = kept
}
