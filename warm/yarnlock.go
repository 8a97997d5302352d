package warm

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseYarnLock reads a yarn.lock: yarn berry's (2 and later, YAML with a
// __metadata entry) or yarn classic's (v1, its own format).
func ParseYarnLock(data []byte) (*Lockfile, error) {
	if isBerry(data) {
		return parseYarnBerry(data)
	}
	return parseYarnClassic(data)
}

// isBerry reports whether data has a top-level __metadata key.
func isBerry(data []byte) bool {
	for line := range bytes.Lines(data) {
		if bytes.HasPrefix(line, []byte("__metadata:")) || bytes.HasPrefix(line, []byte(`"__metadata":`)) {
			return true
		}
	}
	return false
}

// classicEntry is one block of a yarn classic lockfile.
type classicEntry struct {
	header                       string
	patterns                     []string
	version, resolved, integrity string
}

// parseYarnClassic reads the v1 format:
//
//	"@scope/a@^1.0.0", "@scope/a@^1.1.0":
//	  version "1.2.3"
//	  resolved "https://registry.yarnpkg.com/@scope/a/-/a-1.2.3.tgz#<sha1 hex>"
//	  integrity sha512-...
//	  dependencies:
//	    b "^2.0.0"
//
// An alias is "string-width-cjs@npm:string-width@^4.2.0"; its version and
// resolved are string-width's. The integrity is the "integrity" field, else
// the sha1 in the resolved URL's fragment.
func parseYarnClassic(data []byte) (*Lockfile, error) {
	c := newCollector(FormatYarnClassic)
	var cur *classicEntry
	sawEntry := false
	flush := func() {
		if cur != nil {
			addClassic(c, cur)
			cur = nil
		}
	}
	lineNo := 0
	for raw := range bytes.Lines(data) {
		lineNo++
		line := strings.TrimRight(string(raw), "\r\n")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if indent == 0 {
			flush()
			header, ok := strings.CutSuffix(trimmed, ":")
			if !ok {
				c.skip(fmt.Sprintf("line %d", lineNo), "not an entry header")
				continue
			}
			sawEntry = true
			cur = &classicEntry{header: header, patterns: splitPatterns(header)}
			continue
		}
		if cur == nil || indent != 2 {
			continue // nested blocks (dependencies, optionalDependencies)
		}
		key, value, ok := classicField(trimmed)
		if !ok {
			continue
		}
		switch key {
		case "version":
			cur.version = value
		case "resolved":
			cur.resolved = value
		case "integrity":
			cur.integrity = value
		}
	}
	flush()
	if !sawEntry && !bytes.Contains(data, []byte("yarn lockfile v1")) {
		return nil, fmt.Errorf("yarn.lock: no entries and no \"# yarn lockfile v1\" line: not a yarn lockfile")
	}
	return c.done(), nil
}

// splitPatterns splits an entry header at the commas outside quotes and
// unquotes each pattern.
func splitPatterns(header string) []string {
	var out []string
	add := func(p string) {
		if p = unquote(strings.TrimSpace(p)); p != "" {
			out = append(out, p)
		}
	}
	start, inQuote := 0, false
	for i := 0; i < len(header); i++ {
		switch header[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				add(header[start:i])
				start = i + 1
			}
		}
	}
	add(header[start:])
	return out
}

// classicField splits `key "value"`, `key value` or `key: value`.
func classicField(s string) (key, value string, ok bool) {
	var rest string
	if strings.HasPrefix(s, `"`) {
		end := closingQuote(s)
		if end < 0 {
			return "", "", false
		}
		key, rest = unquote(s[:end+1]), s[end+1:]
	} else {
		i := strings.IndexAny(s, " :")
		if i < 0 {
			return s, "", true
		}
		key, rest = s[:i], s[i:]
	}
	rest = strings.TrimSpace(rest)
	rest = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
	return key, unquote(rest), true
}

// closingQuote returns the index of the quote ending the string that
// starts s, or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unquote removes JSON-style double quotes, if any.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	return s
}

func addClassic(c *collector, e *classicEntry) {
	entry := shorten(strings.Join(e.patterns, ", "))
	if len(e.patterns) == 0 {
		c.skip(entry, "no pattern")
		return
	}
	name, rng := splitNameAt(e.patterns[0])
	if spec, ok := strings.CutPrefix(rng, "npm:"); ok {
		name, rng = splitNameAt(spec)
	}
	resolved, fragment, _ := strings.Cut(e.resolved, "#")
	switch {
	case e.version == "":
		c.skip(entry, "no version")
		return
	case strings.ContainsAny(rng, ":/"):
		c.skip(entry, "not from a registry: "+shorten(rng))
		return
	case !registryTarball(resolved):
		c.skip(entry, "not from a registry: "+shorten(resolved))
		return
	}
	integrity := e.integrity
	if integrity == "" {
		integrity = sha1Integrity(fragment)
	}
	c.add(entry, name, e.version, integrity)
}

// berryEntry is one entry of a yarn berry lockfile.
type berryEntry struct {
	Version    string `yaml:"version"`
	Resolution string `yaml:"resolution"`
	Checksum   string `yaml:"checksum"`
}

// parseYarnBerry reads yarn 2+'s YAML lockfile:
//
//	"ms@npm:^2.1.3":
//	  version: 2.1.3
//	  resolution: "ms@npm:2.1.3"
//	  checksum: 10c0/...
//
// Only npm: resolutions are registry packages; workspace:, patch:,
// portal:, link:, file:, exec: and git resolutions are skipped (a patch's
// base package has its own npm: entry). An alias's resolution names the
// real package. The checksum is of yarn's zip archive, not of the tarball,
// so Integrity stays empty.
func parseYarnBerry(data []byte) (*Lockfile, error) {
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("yarn.lock: %v", err)
	}
	if _, ok := doc["__metadata"]; !ok {
		return nil, fmt.Errorf("yarn.lock: no __metadata: not a yarn berry lockfile")
	}
	c := newCollector(FormatYarnBerry)
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		if key == "__metadata" {
			continue
		}
		node := doc[key]
		entry := shorten(key)
		var e berryEntry
		if err := node.Decode(&e); err != nil {
			c.skip(entry, "unreadable: "+err.Error())
			continue
		}
		if e.Resolution == "" {
			c.skip(entry, "no resolution")
			continue
		}
		name, ref := splitNameAt(e.Resolution)
		spec, ok := strings.CutPrefix(ref, "npm:")
		if !ok {
			protocol, _, _ := strings.Cut(ref, ":")
			c.skip(entry, fmt.Sprintf("%s: resolution, not from a registry", shorten(protocol)))
			continue
		}
		// "npm:1.0.0::__archiveUrl=…" carries parameters after "::".
		version, _, _ := strings.Cut(spec, "::")
		if strings.Contains(version, "@") { // an alias resolution: npm:real@1.0.0
			name, version = splitNameAt(version)
		}
		c.add(entry, name, version, "")
	}
	return c.done(), nil
}
