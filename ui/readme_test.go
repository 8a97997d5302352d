package ui

import (
	"runtime"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// readmeImageCases are READMEs with an image in every form an author can
// give one, and what the viewer must see instead of it.
var readmeImageCases = []struct {
	name, md string
	want     []string
	not      []string
}{
	{"markdown image", "![logo](https://cdn.example/logo.png)",
		[]string{`<p><a class="remote-image" href="https://cdn.example/logo.png" rel="nofollow noreferrer noopener" target="_blank">Image: logo (from cdn.example)</a></p>`}, nil},
	{"raw img", `<img src="https://cdn.example/raw.png" alt="raw">`,
		[]string{`<a class="remote-image" href="https://cdn.example/raw.png" rel="nofollow noreferrer noopener" target="_blank">Image: raw (from cdn.example)</a>`}, nil},
	{"upper case, spaces, port", `<IMG SRC=" HTTPS://CDN.Example:8443/up.png " ALT=up>`,
		[]string{`href="https://CDN.Example:8443/up.png"`, ">Image: up (from cdn.example:8443)</a>"}, nil},
	{"image tag", `<image src="https://cdn.example/i.png" alt="old">`,
		[]string{`<a class="remote-image" href="https://cdn.example/i.png"`, ">Image: old (from cdn.example)</a>"}, nil},
	// A badge keeps its link, which gains no second anchor.
	{"badge inside link", "[![build](https://ci.example/badge.svg)](https://ci.example/job)",
		[]string{`<p><a href="https://ci.example/job" rel="nofollow noreferrer noopener" target="_blank">Image: build (from ci.example)</a></p>`},
		[]string{"remote-image", "badge.svg"}},
	{"raw badge inside link", `<a href="https://ci.example/job"><img src="https://ci.example/b.svg" alt="ci"></a>`,
		[]string{`<a href="https://ci.example/job" rel="nofollow noreferrer noopener" target="_blank">Image: ci (from ci.example)</a>`},
		[]string{"remote-image", "b.svg"}},
	{"relative image", "![diagram](docs/diagram.png)", []string{"<p>Image: diagram</p>"}, []string{"diagram.png", "<a"}},
	{"relative image inside link", `<a href="https://x.example/">see <img src="shot.png" alt="shot"></a>`,
		[]string{`<a href="https://x.example/" rel="nofollow noreferrer noopener" target="_blank">see Image: shot</a>`}, []string{"shot.png"}},
	{"protocol-relative image", `<img src="//cdn.example/p.png" alt="p">`, []string{"Image: p"}, []string{"cdn.example", "<a"}},
	{"data: image", `<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">`, []string{"Image: inline"}, []string{"data:", "<a"}},
	{"javascript: src", `<img src="javascript:alert(1)" alt="js">`, []string{"Image: js"}, []string{"javascript", "alert", "<a"}},
	{"no src", `<img alt="nothing">`, []string{"Image: nothing"}, []string{"<a"}},
	{"onerror", `<img src=x onerror="alert(1)">`, []string{"Image: untitled"}, []string{"alert", "<a"}},
	{"remote image with onerror", `<img src="https://cdn.example/o.png" onerror="alert(1)" alt="o">`,
		[]string{">Image: o (from cdn.example)</a>"}, []string{"alert"}},
	{"empty alt", `<img src="https://cdn.example/e.png" alt="">`, []string{">Image: untitled (from cdn.example)</a>"}, nil},
	{"blank alt", "<img src=\"https://cdn.example/b.png\" alt=\" \t\n \">", []string{">Image: untitled (from cdn.example)</a>"}, nil},
	{"alt breaking out", `<img src="https://cdn.example/s.png" alt='"><script>alert(1)</script>'>`,
		[]string{">Image: &#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt; (from cdn.example)</a>"}, nil},
	{"markdown alt breaking out", `![a"><script>alert(1)</script>](https://cdn.example/m.png)`,
		[]string{"(from cdn.example)</a>"}, nil},
	{"host breaking out", `<img src="https://cdn.example&quot;&gt;&lt;script&gt;/x.png" alt="h">`, nil, nil},
	{"srcset only", `<img srcset="https://cdn.example/1x.png 1x, https://cdn.example/2x.png 2x" alt="set">`,
		[]string{"Image: set"}, []string{"cdn.example"}},
	{"src and srcset", `<img src="https://cdn.example/s.png" srcset="https://other.example/2x.png 2x" alt="both">`,
		[]string{">Image: both (from cdn.example)</a>"}, []string{"other.example", "srcset"}},
	{"picture", `<picture><source srcset="https://evil.example/s.png" media="(min-width: 1px)"><img src="https://cdn.example/f.png" alt="pic"></picture>`,
		[]string{`<a class="remote-image" href="https://cdn.example/f.png"`, ">Image: pic (from cdn.example)</a>"}, []string{"evil.example", "<source", "<picture"}},
	{"picture without img", `<picture><source srcset="https://evil.example/s.png"></picture>`, nil, []string{"evil.example", "<source"}},
	{"svg image", `<svg><image href="https://evil.example/s.png"/></svg>`, nil, []string{"evil.example"}},
	{"video poster", `<video poster="https://evil.example/p.png" src="https://evil.example/v.mp4"></video>`, nil, []string{"evil.example"}},
	// An author's anchor dressed as ours would claim a host it does not
	// link to: it loses the class.
	{"forged stand-in", `<a class="remote-image" href="https://evil.example/">Image: logo (from github.com)</a> <p class="lead">p</p>`,
		[]string{`<a href="https://evil.example/" rel="nofollow noreferrer noopener" target="_blank">Image: logo (from github.com)</a>`}, []string{"class="}},
	// The parser's bound on nesting: the README is then its text.
	{"nested too deep", strings.Repeat("<div>", 600) + `<img src="https://cdn.example/deep.png">`,
		[]string{"&lt;div&gt;&lt;div&gt;", "&lt;img src=&#34;https://cdn.example/deep.png&#34;&gt;"}, nil},
	{"several", "![a](https://a.example/1.png) text ![b](rel.png) <img src=https://b.example/2.png alt=c>",
		[]string{">Image: a (from a.example)</a> text Image: b ", ">Image: c (from b.example)</a>"}, nil},
}

func TestRenderReadmeImages(t *testing.T) {
	for _, tt := range readmeImageCases {
		t.Run(tt.name, func(t *testing.T) {
			out := string(renderReadme(tt.md))
			lower := strings.ToLower(out)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			for _, w := range append(tt.not, "<img", "onerror", "<script") {
				if strings.Contains(lower, w) {
					t.Errorf("holds %q:\n%s", w, out)
				}
			}
			if problem := unsafeReadme(out); problem != "" {
				t.Errorf("%s:\n%s", problem, out)
			}
		})
	}
}

// TestSanitiserEmptiesImageSources: should an img ever reach the
// sanitiser, it loads nothing from anywhere.
func TestSanitiserEmptiesImageSources(t *testing.T) {
	out := sanitiser.Sanitize(`<img src="https://evil.example/x.png" alt="a"><img src="/local.png" alt="b"><img srcset="https://evil.example/2x.png 2x">`)
	if strings.Contains(out, "evil.example") || strings.Contains(out, "local.png") {
		t.Errorf("an image source survived the sanitiser: %s", out)
	}
	if problem := unsafeReadme(out); problem != "" {
		t.Errorf("%s: %s", problem, out)
	}
}

// TestSanitiserKeepsOnlyOurClass: class survives on a link only, and only
// as remote-image.
func TestSanitiserKeepsOnlyOurClass(t *testing.T) {
	out := sanitiser.Sanitize(`<a class="remote-image" href="https://x.example/">kept</a><a class="remote-image other" href="https://x.example/">a</a><p class="remote-image">p</p><span class="x">s</span>`)
	if strings.Count(out, "class=") != 1 || !strings.Contains(out, `<a class="remote-image" href="https://x.example/"`) {
		t.Errorf("classes: %s", out)
	}
}

func FuzzRenderReadme(f *testing.F) {
	for _, tt := range readmeImageCases {
		f.Add(tt.md)
	}
	f.Add("<a href=\"javascript:alert(1)\">a</a> <a href=\"JaVa&#x09;ScRiPt:alert(1)\">b</a> [c](javascript:alert(1))")
	f.Add("<svg onload=\"alert(1)\"><style>&lt;img src=https://evil.example/x&gt;</style></svg><noscript><img src=https://evil.example/n></noscript>")
	f.Add("<math><mtext><table><mglyph><style><img src=https://evil.example/m onerror=alert(1)>")
	f.Add("<div style=\"background:url(https://evil.example/t.png)\">s</div><iframe src=\"https://evil.example/f\"></iframe>")
	f.Fuzz(func(t *testing.T, md string) {
		out := string(renderReadme(md))
		if problem := unsafeReadme(out); problem != "" {
			t.Fatalf("%s\nREADME: %q\nHTML: %s", problem, md, out)
		}
	})
}

// unsafeReadme says what in out, rendered README HTML, could run script or
// load anything without the viewer's click; "" when nothing. It reads out
// with the tokenizer, as the browser will, so that text merely mentioning
// "javascript:" or "onclick=" is not mistaken for markup.
func unsafeReadme(out string) string {
	if strings.Contains(strings.ToLower(out), "<script") {
		return "a script element"
	}
	z := html.NewTokenizer(strings.NewReader(out))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "script", "style", "iframe", "object", "embed", "link", "meta", "base", "source", "picture", "video", "audio", "svg", "math":
				return "a <" + tok.Data + "> element"
			}
			for _, a := range tok.Attr {
				key := strings.ToLower(a.Key)
				val := urlish(a.Val)
				switch {
				case strings.HasPrefix(key, "on"):
					return "an event handler attribute " + a.Key
				case key == "style":
					return "a style attribute"
				case strings.HasPrefix(val, "javascript:") || strings.HasPrefix(val, "vbscript:"):
					return "a script URL in " + a.Key
				case tok.Data == "img" && (key == "src" || key == "srcset") && val != "":
					return "an image that loads " + a.Val
				case key == "srcset" || key == "poster" || key == "background" || key == "data" || key == "action" || key == "formaction":
					return "a " + a.Key + " attribute"
				case key == "src" && val != "":
					return "a src attribute " + a.Val
				}
			}
		}
	}
}

// urlish is v as a browser reads a URL: lower case, without the ASCII
// whitespace and control characters it drops.
func urlish(v string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' {
			return -1
		}
		return r
	}, strings.ToLower(v))
}

// TestReadmeAmplificationIsBounded: READMEs whose Markdown grows far
// faster than its text, each a way to make the server allocate gigabytes
// from one package's page, are shown as plain text, or cut, within a
// bounded allocation. (Before the bounds, the table made 33 MB of HTML and
// allocated 1.9 GB; the references 179 MB and 3.3 GB.)
func TestReadmeAmplificationIsBounded(t *testing.T) {
	wideHeader := "|" + strings.Repeat("a|", 100) + "\n|" + strings.Repeat("-|", 100) + "\n"
	for _, tt := range []struct {
		name, md string
		plain    bool
	}{
		{"table rows padded to a wide header", wideHeader + strings.Repeat("|\n", 32<<10), true},
		{"the same table in a quote", strings.ReplaceAll(wideHeader+strings.Repeat("|\n", 32<<10), "\n", "\n> ")[:len(wideHeader)+64<<10], true},
		{"the same table in a list", "- " + strings.ReplaceAll(wideHeader+strings.Repeat("|\n", 20<<10), "\n", "\n  "), true},
		{"a reference used everywhere", "[a]: http://x/" + strings.Repeat("b", 32<<10) + "\n\n" + strings.Repeat("[a]", 10<<10), true},
		{"past the size limit", strings.Repeat("word ", 200<<10) + "THE END", false},
		{"nested quotes (deeper than the HTML parser goes)", strings.Repeat(">", 64<<10), true},
		{"open brackets", strings.Repeat("[a](", 16<<10), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out := string(renderReadme(tt.md))
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
				t.Errorf("rendering allocated %d MiB", alloc>>20)
			}
			if len(out) > maxReadmeHTML+maxReadme*6 {
				t.Errorf("%d bytes of HTML", len(out))
			}
			if strings.Contains(out, "THE END") {
				t.Error("the README was not cut")
			}
			if plain := strings.Contains(out, `<pre class="readme-text">`); plain != tt.plain {
				t.Errorf("shown as plain text: %v, want %v: %.300s", plain, tt.plain, out)
			}
		})
	}
}

// TestReadmeTablesStillRender: real tables, also in quotes and lists, are
// tables, and quotes a few deep are quotes: the bounds count generously
// but not absurdly.
func TestReadmeTablesStillRender(t *testing.T) {
	table := "| option | default | meaning |\n|:--|:-:|--:|\n" + strings.Repeat("| `x` | 1 | a thing |\n", 300)
	for name, md := range map[string]string{"top level": table, "in a quote": "> " + strings.ReplaceAll(table, "\n", "\n> "), "in a list": "- item\n\n  " + strings.ReplaceAll(table, "\n", "\n  ")} {
		out := string(renderReadme(md))
		if !strings.Contains(out, "<table>") || strings.Contains(out, "readme-text") {
			t.Errorf("%s: %.300s", name, out)
		}
	}
	for _, tt := range []struct {
		md   string
		want int
	}{
		{"|a|b|\n|-|-|\n|1|2|\n\n|c|\n|--|\n|3|\n", 2 + 2 + 1 + 1},
		{"---\ntext\n", 2},
		{"a | b\n--- | ---\n1 | 2\n2 | 3\n", 6},
		{"> |a|\n> |:-:|\n> |1|\n>\n> more\n", 2},
		{"no tables | here\njust text\n", 0},
	} {
		if got, _ := measure(tt.md); got != tt.want {
			t.Errorf("measure(%q) cells = %d, want %d", tt.md, got, tt.want)
		}
	}
	for md, want := range map[string]int{"text\n": 0, "> a\n>> b\n> > > c\n": 3, "x > y\n": 0, "\t>\t>d\n": 2} {
		if _, got := measure(md); got != want {
			t.Errorf("measure(%q) depth = %d, want %d", md, got, want)
		}
	}
	if out := string(renderReadme(strings.Repeat("> ", 20) + "deep but fine\n")); !strings.Contains(out, "<blockquote>") {
		t.Errorf("20 nested quotes: %.200s", out)
	}
}
