package npm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"unicode/utf8"
)

// ErrInvalidPackument is returned for upstream bytes that are not a
// packument npmgate can serve: not a JSON object, or for another name.
var ErrInvalidPackument = errors.New("invalid packument")

// Packument is a package document split into the parts npmgate changes
// (versions, dist-tags, time) and the rest, which is kept as raw bytes and
// written back unchanged. Every []byte in it is a sub-slice of the document
// it was parsed from.
type Packument struct {
	Name     string
	order    []string // top-level keys as upstream wrote them
	other    map[string][]byte
	DistTags []Tag
	Time     []RawMember
	Versions []*Version
	// Unservable counts versions dropped because their tarball could not be
	// given a safe file name.
	Unservable int
}

// Tag is one dist-tag.
type Tag struct{ Name, Version string }

// RawMember is one member of a JSON object, its value kept raw.
type RawMember struct {
	Key   string
	Value []byte
}

// Version is one entry of a packument's versions object.
type Version struct {
	Version string // the key in "versions", exactly as upstream wrote it
	Dist    Dist
	// File is the tarball's file name, the last segment of its URL.
	File string
	// Source is the index of the connector document this version came from.
	Source int

	raw          []byte // the whole version object
	tarballStart int    // offsets of dist.tarball's value in raw; -1 if absent
	tarballEnd   int
}

// Dist is the part of a version's "dist" object npmgate reads.
type Dist struct {
	Tarball   string
	Integrity string
	Shasum    string
}

// Parse splits a packument. source is recorded in every version, so that a
// merged document still knows which connector each version came from.
func Parse(data []byte, source int) (*Packument, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: not valid JSON", ErrInvalidPackument)
	}
	// Every raw piece kept below (other members, time values, whole
	// version objects) is served as it is, so no piece may hold a second
	// reading for the client: a version with two "dist" members would
	// have npm fetch the second, unrewritten tarball URL.
	if path, dup := DuplicateKey(data); dup {
		return nil, fmt.Errorf("%w: the key %s appears twice in one object", ErrInvalidPackument, path)
	}
	p := &Packument{other: map[string][]byte{}}
	var perr error
	err := eachMember(data, func(key string, value []byte) bool {
		p.order = append(p.order, key)
		switch key {
		case "name":
			p.Name = stringValue(value)
			p.other[key] = value
		case "versions":
			perr = p.parseVersions(value, source)
		case "dist-tags":
			_ = eachMember(value, func(k string, v []byte) bool {
				if s := stringValue(v); s != "" {
					p.DistTags = append(p.DistTags, Tag{k, s})
				}
				return true
			})
		case "time":
			_ = eachMember(value, func(k string, v []byte) bool {
				p.Time = append(p.Time, RawMember{k, v})
				return true
			})
		default:
			p.other[key] = value
		}
		return perr == nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPackument, err)
	}
	if perr != nil {
		return nil, perr
	}
	return p, nil
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func (p *Packument) parseVersions(obj []byte, source int) error {
	if len(obj) == 0 || obj[0] != '{' {
		return nil // "versions": null and friends: treat as none
	}
	return eachMemberAt(obj, func(key string, start, end int) bool {
		raw := obj[start:end]
		if raw[0] != '{' {
			p.Unservable++
			return true
		}
		v := &Version{Version: key, Source: source, raw: raw, tarballStart: -1, tarballEnd: -1}
		_ = eachMemberAt(raw, func(k string, ds, de int) bool {
			if k != "dist" {
				return true
			}
			dist := raw[ds:de]
			_ = eachMemberAt(dist, func(dk string, s, e int) bool {
				val := dist[s:e]
				switch dk {
				case "tarball":
					v.Dist.Tarball = stringValue(val)
					if val[0] == '"' {
						v.tarballStart, v.tarballEnd = ds+s, ds+e
					}
				case "integrity":
					v.Dist.Integrity = stringValue(val)
				case "shasum":
					v.Dist.Shasum = stringValue(val)
				}
				return true
			})
			return false
		})
		v.File = fileName(v.Dist.Tarball, p.Name, key)
		if v.File == "" || v.tarballStart < 0 {
			p.Unservable++
			return true
		}
		p.Versions = append(p.Versions, v)
		return true
	})
}

// fileName picks the tarball file name for a version: the last segment of
// upstream's URL when it is a safe name, else npm's conventional
// "{unscoped}-{version}.tgz", else "" (the version cannot be served).
func fileName(tarball, name, version string) string {
	if u, err := url.Parse(tarball); err == nil && u.Path != "" {
		if f := path.Base(u.Path); ValidateTarballFile(f) == nil {
			return f
		}
	}
	if name == "" {
		return ""
	}
	f := TarballFile(name, version)
	if ValidateTarballFile(f) != nil {
		return ""
	}
	return f
}

// Merge overlays documents in priority order (nil entries are skipped):
// the first document's own fields win, versions and time entries are the
// union with earlier documents winning a clash, and dist-tags come from the
// first document that has each tag.
func Merge(docs []*Packument) *Packument {
	var out *Packument
	seenV := map[string]bool{}
	seenT := map[string]bool{}
	seenTag := map[string]bool{}
	for _, d := range docs {
		if d == nil {
			continue
		}
		if out == nil {
			cp := *d
			cp.Versions, cp.Time, cp.DistTags = nil, nil, nil
			out = &cp
		} else {
			out.Unservable += d.Unservable
		}
		for _, v := range d.Versions {
			if !seenV[v.Version] {
				seenV[v.Version] = true
				out.Versions = append(out.Versions, v)
			}
		}
		for _, t := range d.Time {
			if !seenT[t.Key] {
				seenT[t.Key] = true
				out.Time = append(out.Time, t)
			}
		}
		for _, t := range d.DistTags {
			if !seenTag[t.Name] {
				seenTag[t.Name] = true
				out.DistTags = append(out.DistTags, t)
			}
		}
	}
	return out
}

// Files maps every tarball file name a client may ask for to its version:
// the file name upstream used and, as an alias, the conventional
// "{unscoped}-{version}.tgz" that yarn berry builds by itself.
func (p *Packument) Files() map[string]*Version {
	m := make(map[string]*Version, len(p.Versions))
	for _, v := range p.Versions {
		m[v.File] = v
	}
	for _, v := range p.Versions {
		alias := TarballFile(p.Name, v.Version)
		if _, taken := m[alias]; !taken && ValidateTarballFile(alias) == nil {
			m[alias] = v
		}
	}
	return m
}

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

// Modified is time.modified, or "".
func (p *Packument) Modified() string {
	for _, t := range p.Time {
		if t.Key == "modified" {
			return stringValue(t.Value)
		}
	}
	return ""
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

func hasInstallScript(scripts []byte) bool {
	found := false
	_ = eachMember(scripts, func(k string, _ []byte) bool {
		found = k == "preinstall" || k == "install" || k == "postinstall"
		return !found
	})
	return found
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

// Version looks up a version by its exact key.
func (p *Packument) Version(v string) *Version {
	for _, x := range p.Versions {
		if x.Version == v {
			return x
		}
	}
	return nil
}

// Tag returns the version a dist-tag points at, or "".
func (p *Packument) Tag(name string) string {
	for _, t := range p.DistTags {
		if t.Name == name {
			return t.Version
		}
	}
	return ""
}

// RenderVersion writes one version object, its tarball URL rewritten, as
// GET /{name}/{version} answers.
func (p *Packument) RenderVersion(buf *bytes.Buffer, base string, v *Version) {
	buf.Write(v.raw[:v.tarballStart])
	WriteJSONString(buf, TarballURL(base, p.Name, v))
	buf.Write(v.raw[v.tarballEnd:])
}

// CheckName verifies that an upstream document is for the package that was
// asked for, so a confused or hostile upstream cannot fill one name's cache
// entry with another package.
func (p *Packument) CheckName(want string) error {
	if p.Name == "" {
		return fmt.Errorf("%w: no name", ErrInvalidPackument)
	}
	if p.Name != want {
		return fmt.Errorf("%w: document is for %q, not %q", ErrInvalidPackument, p.Name, want)
	}
	return nil
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
