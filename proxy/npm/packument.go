package npm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
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

// Modified is time.modified, or "".
func (p *Packument) Modified() string {
	for _, t := range p.Time {
		if t.Key == "modified" {
			return stringValue(t.Value)
		}
	}
	return ""
}

func hasInstallScript(scripts []byte) bool {
	found := false
	_ = eachMember(scripts, func(k string, _ []byte) bool {
		found = k == "preinstall" || k == "install" || k == "postinstall"
		return !found
	})
	return found
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
