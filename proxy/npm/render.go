package npm

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"
)

// TarballURL is where a client downloads v from a feed whose public base
// URL (scheme, host and feed path, no trailing slash) is base.
func TarballURL(base, name string, v *Version) string {
	return base + "/" + name + "/-/" + v.File
}

// Render writes the document for a client. Tarball URLs point at base (see
// TarballURL). An abbreviated document holds only what installers need.
func (p *Packument) Render(buf *bytes.Buffer, base string, abbreviated bool) {
	p.render(buf, base, abbreviated, nil)
}

// RenderMarked is Render that also returns the offset in buf of every
// copy of base it wrote, so that the same bytes can be sent for another
// base without rendering again (see Splice). ok is false, and there are no
// marks, when base is not written verbatim (it has characters JSON
// escapes).
func (p *Packument) RenderMarked(buf *bytes.Buffer, base string, abbreviated bool) (marks []int, ok bool) {
	if !verbatim(base) {
		p.render(buf, base, abbreviated, nil)
		return nil, false
	}
	m := &marker{start: buf.Len(), at: make([]int, 0, len(p.Versions))}
	p.render(buf, base, abbreviated, m)
	return m.at, true
}

// Splice returns body, rendered with marks for base from, with to in
// place of each copy of from: a copy and no JSON work. to must be
// verbatim in JSON, as a validated base URL is.
func Splice(body []byte, marks []int, from, to string) []byte {
	out := make([]byte, 0, len(body)+len(marks)*(len(to)-len(from)))
	last := 0
	for _, at := range marks {
		out = append(out, body[last:at]...)
		out = append(out, to...)
		last = at + len(from)
	}
	return append(out, body[last:]...)
}

// Spliced reads what Splice returns without building it: the body's
// bytes between the marks and to in place of from, so that a document
// sent for another base costs no copy of it in memory.
type Spliced struct {
	body     []byte
	marks    []int
	from, to string
	off      int    // next byte of body to send
	pend     string // what is left of to
}

// NewSpliced reads body, rendered with marks for base from, for base to.
func NewSpliced(body []byte, marks []int, from, to string) *Spliced {
	return &Spliced{body: body, marks: marks, from: from, to: to}
}

// Len is the size of the spliced document.
func (s *Spliced) Len() int { return len(s.body) + len(s.marks)*(len(s.to)-len(s.from)) }

func (s *Spliced) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if s.pend != "" {
			c := copy(p[n:], s.pend)
			s.pend, n = s.pend[c:], n+c
			continue
		}
		end := len(s.body)
		if len(s.marks) > 0 {
			end = s.marks[0]
		}
		if s.off < end {
			c := copy(p[n:], s.body[s.off:end])
			s.off, n = s.off+c, n+c
			continue
		}
		if len(s.marks) == 0 {
			break
		}
		s.pend, s.off, s.marks = s.to, s.off+len(s.from), s.marks[1:]
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// WriteTo writes the rest in the segments it is made of: the writer
// (fasthttp's buffered connection) copies them once, into the socket.
func (s *Spliced) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if s.pend != "" {
			n, err := io.WriteString(w, s.pend)
			total += int64(n)
			if err != nil {
				return total, err
			}
			s.pend = ""
		}
		end := len(s.body)
		if len(s.marks) > 0 {
			end = s.marks[0]
		}
		if s.off < end {
			n, err := w.Write(s.body[s.off:end])
			total += int64(n)
			s.off += n
			if err != nil {
				return total, err
			}
		}
		if len(s.marks) == 0 {
			return total, nil
		}
		s.pend, s.off, s.marks = s.to, s.off+len(s.from), s.marks[1:]
	}
}

// marker records where a render writes its base.
type marker struct {
	start int
	at    []int
}

// verbatim reports whether WriteJSONString writes s unchanged.
func verbatim(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (p *Packument) render(buf *bytes.Buffer, base string, abbreviated bool, m *marker) {
	if abbreviated {
		p.renderAbbreviated(buf, base, m)
		return
	}
	order := p.order
	for _, k := range []string{"dist-tags", "versions", "time"} {
		if !containsKey(order, k) {
			order = append(order[:len(order):len(order)], k)
		}
	}
	buf.WriteByte('{')
	for i, k := range order {
		if i > 0 {
			buf.WriteByte(',')
		}
		WriteJSONString(buf, k)
		buf.WriteByte(':')
		switch k {
		case "versions":
			p.writeVersions(buf, base, false, m)
		case "dist-tags":
			p.writeTags(buf)
		case "time":
			p.writeTime(buf)
		default:
			buf.Write(p.other[k])
		}
	}
	buf.WriteByte('}')
}

func (p *Packument) renderAbbreviated(buf *bytes.Buffer, base string, m *marker) {
	buf.WriteString(`{"name":`)
	WriteJSONString(buf, p.Name)
	if m := p.Modified(); m != "" {
		buf.WriteString(`,"modified":`)
		WriteJSONString(buf, m)
	}
	buf.WriteString(`,"dist-tags":`)
	p.writeTags(buf)
	buf.WriteString(`,"versions":`)
	p.writeVersions(buf, base, true, m)
	// pnpm reads time from the abbreviated document when it is there, and
	// needs it for time-based resolution and minimumReleaseAge.
	if len(p.Time) > 0 {
		buf.WriteString(`,"time":`)
		p.writeTime(buf)
	}
	buf.WriteByte('}')
}

func (p *Packument) writeTags(buf *bytes.Buffer) {
	buf.WriteByte('{')
	for i, t := range p.DistTags {
		if i > 0 {
			buf.WriteByte(',')
		}
		WriteJSONString(buf, t.Name)
		buf.WriteByte(':')
		WriteJSONString(buf, t.Version)
	}
	buf.WriteByte('}')
}

func (p *Packument) writeTime(buf *bytes.Buffer) {
	buf.WriteByte('{')
	for i, t := range p.Time {
		if i > 0 {
			buf.WriteByte(',')
		}
		WriteJSONString(buf, t.Key)
		buf.WriteByte(':')
		buf.Write(t.Value)
	}
	buf.WriteByte('}')
}

func (p *Packument) writeVersions(buf *bytes.Buffer, base string, abbreviated bool, m *marker) {
	buf.WriteByte('{')
	for i, v := range p.Versions {
		if i > 0 {
			buf.WriteByte(',')
		}
		WriteJSONString(buf, v.Version)
		buf.WriteByte(':')
		if abbreviated {
			p.writeAbbreviatedVersion(buf, base, v, m)
			continue
		}
		buf.Write(v.raw[:v.tarballStart])
		p.writeTarball(buf, base, v, m)
		buf.Write(v.raw[v.tarballEnd:])
	}
	buf.WriteByte('}')
}

// abbreviatedFields are the version fields an abbreviated ("corgi")
// document keeps: what installers read of a dependency. That is the
// registry's documented list plus libc (pnpm and yarn read it) and license
// (npmjs's abbreviated documents carry it, and npm copies a manifest's
// license into package-lock.json), less devDependencies: no client
// installs a dependency's dev dependencies (npm's arborist loads them for
// the project root only), and they are often a third of the document.
var abbreviatedFields = map[string]bool{
	"name": true, "version": true, "deprecated": true, "dependencies": true,
	"optionalDependencies": true, "license": true, "bundleDependencies": true,
	"bundledDependencies": true, "peerDependencies": true, "peerDependenciesMeta": true,
	"acceptDependencies": true, "bin": true, "directories": true, "engines": true,
	"_hasShrinkwrap": true, "hasInstallScript": true, "funding": true,
	"cpu": true, "os": true, "libc": true,
}

// writeTarball writes v's tarball URL as a JSON string, noting in m (when
// not nil) where its base starts.
func (p *Packument) writeTarball(buf *bytes.Buffer, base string, v *Version, m *marker) {
	if m != nil {
		m.at = append(m.at, buf.Len()-m.start+1) // after the opening quote
	}
	WriteJSONString(buf, TarballURL(base, p.Name, v))
}

func (p *Packument) writeAbbreviatedVersion(buf *bytes.Buffer, base string, v *Version, m *marker) {
	buf.WriteByte('{')
	n := 0
	hasFlag, installScript := false, false
	_ = eachMemberAt(v.raw, func(k string, s, e int) bool {
		val := v.raw[s:e]
		switch {
		case k == "dist":
			if s > v.tarballStart || v.tarballStart >= e {
				return true // a duplicate "dist": the first one is the one parsed
			}
			if n > 0 {
				buf.WriteByte(',')
			}
			n++
			buf.WriteString(`"dist":`)
			buf.Write(v.raw[s:v.tarballStart])
			p.writeTarball(buf, base, v, m)
			buf.Write(v.raw[v.tarballEnd:e])
			return true
		case k == "scripts":
			installScript = hasInstallScript(val)
			return true
		case abbreviatedFields[k]:
			if k == "hasInstallScript" {
				hasFlag = true
			}
		default:
			return true
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		WriteJSONString(buf, k)
		buf.WriteByte(':')
		buf.Write(val)
		return true
	})
	if installScript && !hasFlag {
		buf.WriteString(`,"hasInstallScript":true`)
	}
	buf.WriteByte('}')
}

// WriteJSONString writes s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone, so names and URLs keep the bytes upstream sent.
func WriteJSONString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				buf.WriteString(s[start:i])
				buf.WriteString(`\ufffd`)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		buf.WriteString(s[start:i])
		switch c {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			fmt.Fprintf(buf, `\u%04x`, c)
		}
		i++
		start = i
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}

// RenderVersion writes one version object, its tarball URL rewritten, as
// GET /{name}/{version} answers.
func (p *Packument) RenderVersion(buf *bytes.Buffer, base string, v *Version) {
	buf.Write(v.raw[:v.tarballStart])
	WriteJSONString(buf, TarballURL(base, p.Name, v))
	buf.Write(v.raw[v.tarballEnd:])
}

// SizeHint estimates the rendered size, to size buffers once.
func (p *Packument) SizeHint(base string) int {
	n := 256
	for _, v := range p.Versions {
		n += len(v.raw) + len(base) + len(p.Name) + 32
	}
	for _, k := range p.order {
		n += len(p.other[k]) + len(k) + 4
	}
	for _, t := range p.Time {
		n += len(t.Key) + len(t.Value) + 4
	}
	return n
}
