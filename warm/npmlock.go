package warm

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// npmLock is package-lock.json / npm-shrinkwrap.json: lockfileVersion 2
// and 3 carry the "packages" map; version 1 only the nested
// "dependencies" tree, read when "packages" is absent.
type npmLock struct {
	LockfileVersion int                 `json:"lockfileVersion"`
	Packages        map[string]npmEntry `json:"packages"`
	Dependencies    map[string]npmDep   `json:"dependencies"`
}

type npmEntry struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Resolved  string `json:"resolved"`
	Integrity string `json:"integrity"`
	Link      bool   `json:"link"`
	InBundle  bool   `json:"inBundle"`
}

type npmDep struct {
	Version      string            `json:"version"`
	Resolved     string            `json:"resolved"`
	Integrity    string            `json:"integrity"`
	Bundled      bool              `json:"bundled"`
	Dependencies map[string]npmDep `json:"dependencies"`
}

// ParsePackageLock reads package-lock.json or npm-shrinkwrap.json.
//
// In the "packages" map, the key "node_modules/a/node_modules/@s/b" is the
// package @s/b, unless the entry's "name" says otherwise: an npm alias
// ("string-width-cjs": "npm:string-width@^4") is installed at
// node_modules/string-width-cjs with "name": "string-width". The root ""
// entry, workspace folders (keys without node_modules/), links, bundled
// dependencies, entries without a version and entries resolved outside a
// registry (git, file, remote tarballs) are skipped.
func ParsePackageLock(data []byte) (*Lockfile, error) {
	var lock npmLock
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("package-lock.json: %v", err)
	}
	c := newCollector(FormatNpm)
	if lock.Packages == nil {
		if lock.Dependencies == nil && lock.LockfileVersion == 0 {
			return nil, fmt.Errorf("package-lock.json: neither \"packages\" nor \"dependencies\": not a lockfile")
		}
		walkNpmV1(c, "", lock.Dependencies)
		return c.done(), nil
	}
	for key, e := range lock.Packages {
		entry := key
		if entry == "" {
			continue // the project itself
		}
		i := strings.LastIndex(key, "node_modules/")
		switch {
		case i < 0:
			c.skip(entry, "workspace folder")
			continue
		case e.Link:
			c.skip(entry, "link")
			continue
		case e.InBundle:
			c.skip(entry, "bundled in its parent's tarball")
			continue
		case e.Version == "":
			c.skip(entry, "no version")
			continue
		case !registryTarball(e.Resolved):
			c.skip(entry, "not from a registry: "+shorten(e.Resolved))
			continue
		}
		name := key[i+len("node_modules/"):]
		if e.Name != "" {
			name = e.Name
		}
		c.add(entry, name, e.Version, e.Integrity)
	}
	return c.done(), nil
}

// walkNpmV1 reads lockfileVersion 1's nested dependencies, where an alias
// is "version": "npm:string-width@4.2.3".
func walkNpmV1(c *collector, parent string, deps map[string]npmDep) {
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, key := range names {
		d := deps[key]
		entry := parent + "node_modules/" + key
		walkNpmV1(c, entry+"/", d.Dependencies)
		name, version := key, d.Version
		if spec, ok := strings.CutPrefix(version, "npm:"); ok {
			name, version = splitNameAt(spec)
		}
		switch {
		case d.Bundled:
			c.skip(entry, "bundled in its parent's tarball")
		case version == "":
			c.skip(entry, "no version")
		case !registryTarball(d.Resolved) || strings.ContainsAny(version, ":/"):
			c.skip(entry, "not from a registry: "+shorten(cmp.Or(d.Resolved, d.Version)))
		default:
			c.add(entry, name, version, d.Integrity)
		}
	}
}

// splitNameAt splits "name@rest" or "@scope/name@rest" at the first @ after
// the name's first character; rest is "" when there is none.
func splitNameAt(s string) (name, rest string) {
	if len(s) > 1 {
		if i := strings.IndexByte(s[1:], '@'); i >= 0 {
			return s[:i+1], s[i+2:]
		}
	}
	return s, ""
}
