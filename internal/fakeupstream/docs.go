package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// tarballSpan is the byte range [start, end) of one versions.<v>.dist.tarball
// string literal (quotes included) in a packument.
type tarballSpan struct {
	start, end int
	url        string
}

// scanPackument walks a packument once and returns the version keys in
// document order and the spans of every dist.tarball string. It does not
// build the document in memory, so the spans let a caller change just those
// strings and keep every other byte as recorded.
func scanPackument(doc []byte) (versions []string, spans []tarballSpan, err error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, nil, err
	}
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return nil, nil, err
		}
		if key != "versions" {
			if err := skipValue(dec); err != nil {
				return nil, nil, err
			}
			continue
		}
		ok, err := enterObject(dec)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			continue // "versions": null
		}
		for dec.More() {
			v, err := stringToken(dec)
			if err != nil {
				return nil, nil, err
			}
			versions = append(versions, v)
			ok, err := enterObject(dec)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				continue
			}
			for dec.More() {
				k, err := stringToken(dec)
				if err != nil {
					return nil, nil, err
				}
				if k != "dist" {
					if err := skipValue(dec); err != nil {
						return nil, nil, err
					}
					continue
				}
				ok, err := enterObject(dec)
				if err != nil {
					return nil, nil, err
				}
				if !ok {
					continue
				}
				for dec.More() {
					dk, err := stringToken(dec)
					if err != nil {
						return nil, nil, err
					}
					if dk != "tarball" {
						if err := skipValue(dec); err != nil {
							return nil, nil, err
						}
						continue
					}
					// The offset is just past the key's closing quote; the
					// value starts after optional space, ':' and space.
					start := valueStart(doc, int(dec.InputOffset()))
					tok, err := dec.Token()
					if err != nil {
						return nil, nil, err
					}
					end := int(dec.InputOffset())
					s, isString := tok.(string)
					if !isString || start >= end || doc[start] != '"' || doc[end-1] != '"' {
						continue
					}
					spans = append(spans, tarballSpan{start: start, end: end, url: s})
				}
				if err := expectDelim(dec, '}'); err != nil {
					return nil, nil, err
				}
			}
			if err := expectDelim(dec, '}'); err != nil {
				return nil, nil, err
			}
		}
		if err := expectDelim(dec, '}'); err != nil {
			return nil, nil, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("packument: data after the top-level object")
	}
	return versions, spans, nil
}

func valueStart(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r' || doc[i] == ':') {
		i++
	}
	return i
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("packument: want %q, got %v", d, tok)
	}
	return nil
}

func stringToken(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("packument: want an object key, got %v", tok)
	}
	return s, nil
}

// enterObject consumes the '{' of an object value and reports true, or
// consumes a whole non-object value and reports false.
func enterObject(dec *json.Decoder) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return false, nil // scalar, already consumed
	}
	if d == '{' {
		return true, nil
	}
	// An array: consume it.
	depth := 1
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			return false, err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
	}
	return false, nil
}

func skipValue(dec *json.Decoder) error {
	var raw json.RawMessage
	return dec.Decode(&raw)
}

// rewriteTarballs returns doc with every dist.tarball replaced by
// newURL(old). Nothing else changes.
func rewriteTarballs(doc []byte, spans []tarballSpan, newURL func(old string) string) []byte {
	var b bytes.Buffer
	b.Grow(len(doc) + len(spans)*16)
	last := 0
	for _, sp := range spans {
		b.Write(doc[last:sp.start])
		b.Write(jsonString(newURL(sp.url)))
		last = sp.end
	}
	b.Write(doc[last:])
	return b.Bytes()
}

// jsonString encodes s as a JSON string without HTML escaping.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // cannot fail for a string
	return bytes.TrimRight(b.Bytes(), "\n")
}

// abbreviatedFields are the per-version fields kept in the abbreviated
// ("corgi") document, in output order. hasInstallScript is computed.
var abbreviatedFields = []string{
	"name", "version", "dependencies", "optionalDependencies", "peerDependencies",
	"peerDependenciesMeta", "bundleDependencies", "bundledDependencies", "bin", "directories",
	"engines", "os", "cpu", "libc", "deprecated", "dist",
}

// abbreviate derives the abbreviated packument
// (application/vnd.npm.install-v1+json) from a full one: top-level name,
// modified, dist-tags and versions, each version reduced to the install
// fields. versionOrder is the order of the version keys in full. It also
// returns the modification time (see modifiedOf), zero if unknown.
func abbreviate(full []byte, versionOrder []string) ([]byte, time.Time, error) {
	var doc struct {
		Name     json.RawMessage                       `json:"name"`
		DistTags json.RawMessage                       `json:"dist-tags"`
		Time     map[string]json.RawMessage            `json:"time"`
		Versions map[string]map[string]json.RawMessage `json:"versions"`
	}
	if err := json.Unmarshal(full, &doc); err != nil {
		return nil, time.Time{}, err
	}
	modified, lastMod := modifiedOf(doc.Time)

	var b bytes.Buffer
	b.Grow(len(full) / 4)
	b.WriteString(`{"name":`)
	if len(doc.Name) == 0 {
		b.WriteString(`""`)
	} else if err := json.Compact(&b, doc.Name); err != nil {
		return nil, time.Time{}, err
	}
	if modified != "" {
		b.WriteString(`,"modified":`)
		b.Write(jsonString(modified))
	}
	b.WriteString(`,"dist-tags":`)
	if len(doc.DistTags) == 0 || string(doc.DistTags) == "null" {
		b.WriteString(`{}`)
	} else if err := json.Compact(&b, doc.DistTags); err != nil {
		return nil, time.Time{}, err
	}
	b.WriteString(`,"versions":{`)
	first := true
	for _, v := range versionOrder {
		m, ok := doc.Versions[v]
		if !ok || m == nil {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(jsonString(v))
		b.WriteString(`:{`)
		firstField := true
		field := func(k string, raw []byte) error {
			if !firstField {
				b.WriteByte(',')
			}
			firstField = false
			b.Write(jsonString(k))
			b.WriteByte(':')
			return json.Compact(&b, raw)
		}
		for _, k := range abbreviatedFields {
			if raw, ok := m[k]; ok {
				if err := field(k, raw); err != nil {
					return nil, time.Time{}, err
				}
			}
		}
		if hasInstallScript(m) {
			if err := field("hasInstallScript", []byte("true")); err != nil {
				return nil, time.Time{}, err
			}
		}
		if raw, ok := m["_hasShrinkwrap"]; ok {
			if err := field("_hasShrinkwrap", raw); err != nil {
				return nil, time.Time{}, err
			}
		}
		b.WriteByte('}')
	}
	b.WriteString(`}}`)
	return b.Bytes(), lastMod, nil
}

func hasInstallScript(m map[string]json.RawMessage) bool {
	if raw, ok := m["hasInstallScript"]; ok && string(bytes.TrimSpace(raw)) == "true" {
		return true
	}
	var scripts map[string]any
	if raw, ok := m["scripts"]; !ok || json.Unmarshal(raw, &scripts) != nil {
		return false
	}
	for _, k := range []string{"preinstall", "install", "postinstall"} {
		if s, ok := scripts[k].(string); ok && strings.TrimSpace(s) != "" {
			return true
		}
	}
	return false
}

// modifiedOf returns time.modified, or when that is missing (as in
// registries that only list publish times) the newest entry of time, both as
// the original string and parsed. Unparseable values give a zero time.
func modifiedOf(times map[string]json.RawMessage) (string, time.Time) {
	var s string
	if raw, ok := times["modified"]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
		t, _ := parseTime(s)
		return s, t
	}
	var bestS string
	var best time.Time
	for k, raw := range times {
		if k == "created" || k == "unpublished" {
			continue
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		if t, ok := parseTime(v); ok && t.After(best) {
			best, bestS = t, v
		}
	}
	if bestS == "" {
		if raw, ok := times["created"]; ok && json.Unmarshal(raw, &s) == nil {
			t, _ := parseTime(s)
			return s, t
		}
	}
	return bestS, best
}

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
