package warm

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

type pnpmLock struct {
	LockfileVersion string               `yaml:"lockfileVersion"`
	Packages        map[string]yaml.Node `yaml:"packages"`
}

type pnpmPackage struct {
	Resolution struct {
		Integrity string `yaml:"integrity"`
		Tarball   string `yaml:"tarball"`
		Type      string `yaml:"type"`
		Directory string `yaml:"directory"`
		Repo      string `yaml:"repo"`
	} `yaml:"resolution"`
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
}

// ParsePnpmLock reads pnpm-lock.yaml. The "packages" keys are
// "/name@version(peer@1.0.0)" in lockfileVersion 6.x, "name@version" in
// 9.x and "/name/version_peer@1.0.0" in 5.x; an aliased package is listed
// under its real name. Entries resolved to a directory, a git repository or
// a tarball outside a registry are skipped.
func ParsePnpmLock(data []byte) (*Lockfile, error) {
	var lock pnpmLock
	if err := yaml.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("pnpm-lock.yaml: %v", err)
	}
	if lock.LockfileVersion == "" {
		return nil, fmt.Errorf("pnpm-lock.yaml: no lockfileVersion: not a pnpm lockfile")
	}
	v5 := strings.HasPrefix(lock.LockfileVersion, "5")
	c := newCollector(FormatPnpm)
	keys := make([]string, 0, len(lock.Packages))
	for k := range lock.Packages {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		node := lock.Packages[key]
		entry := shorten(key)
		var p pnpmPackage
		if err := node.Decode(&p); err != nil {
			c.skip(entry, "unreadable: "+err.Error())
			continue
		}
		r := p.Resolution
		switch {
		case r.Type != "" || r.Directory != "" || r.Repo != "":
			c.skip(entry, "not from a registry: "+shorten(cmp.Or(r.Type, "directory")))
			continue
		case !registryTarball(r.Tarball):
			c.skip(entry, "not from a registry: "+shorten(r.Tarball))
			continue
		}
		name, version := pnpmKey(key, v5)
		if strings.ContainsAny(version, ":/") || version == "" {
			// A registry tarball given by URL: the entry has its version
			// (and, before 9.0, its name) as fields.
			keyName, _ := splitNameAt(strings.TrimPrefix(key, "/"))
			name, version = cmp.Or(p.Name, keyName), p.Version
			if r.Tarball == "" || version == "" {
				c.skip(entry, "not from a registry")
				continue
			}
		}
		c.add(entry, name, version, r.Integrity)
	}
	return c.done(), nil
}

// pnpmKey splits a "packages" key into name and version.
func pnpmKey(key string, v5 bool) (name, version string) {
	key = strings.TrimPrefix(key, "/")
	if v5 {
		i := strings.LastIndexByte(key, '/')
		if i <= 0 {
			return key, ""
		}
		name, version = key[:i], key[i+1:]
		version, _, _ = strings.Cut(version, "_")
		return name, version
	}
	if i := strings.IndexByte(key, '('); i >= 0 {
		key = key[:i]
	}
	i := strings.LastIndexByte(key, '@')
	if i <= 0 {
		return key, ""
	}
	return key[:i], key[i+1:]
}
