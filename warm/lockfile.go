// Package warm fills an npmgate cache from a lockfile: it reads
// package-lock.json, npm-shrinkwrap.json, yarn.lock (classic and berry) or
// pnpm-lock.yaml, and requests every packument and tarball the lockfile
// names through a running npmgate, or through one it starts in-process on a
// data directory. It serves CI images and air-gapped networks: warm once,
// install offline after.
package warm

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/npmgate/npmgate/proxy/npm"
)

// Package is one registry package a lockfile pins.
type Package struct {
	Name    string
	Version string
	// Integrity is the Subresource Integrity string the lockfile records
	// for the tarball ("sha512-…", possibly several hashes), or "" when it
	// records none that covers the tarball (yarn berry's checksum is a hash
	// of its own zip archive, not of the tarball).
	Integrity string
}

// String is name@version.
func (p Package) String() string { return p.Name + "@" + p.Version }

// Format is a lockfile format.
type Format string

// The formats Parse reads.
const (
	FormatNpm         Format = "npm"          // package-lock.json / npm-shrinkwrap.json
	FormatYarnClassic Format = "yarn-classic" // yarn.lock v1
	FormatYarnBerry   Format = "yarn-berry"   // yarn.lock of yarn 2 and later (YAML with __metadata)
	FormatPnpm        Format = "pnpm"         // pnpm-lock.yaml
)

// Lockfile is what a lockfile pins from registries.
type Lockfile struct {
	Format Format
	// Packages is deduplicated by name@version and sorted by name, then
	// version.
	Packages []Package
	// Skipped lists the entries that are not registry packages (the root
	// project, workspaces, links, git and file dependencies, bundled
	// dependencies, patches) or that could not be read, as "entry: reason",
	// sorted.
	Skipped []string
}

// ReadFile reads and parses a lockfile, detecting its format from the file
// name (then from the content, for a lockfile saved under another name).
func ReadFile(path string) (*Lockfile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lf, err := Parse(filepath.Base(path), data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lf, nil
}

// Parse parses a lockfile's content. name is its file name
// (package-lock.json, npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml); for
// any other name the format is guessed from the content.
func Parse(name string, data []byte) (*Lockfile, error) {
	switch strings.ToLower(name) {
	case "package-lock.json", "npm-shrinkwrap.json":
		return ParsePackageLock(data)
	case "yarn.lock":
		return ParseYarnLock(data)
	case "pnpm-lock.yaml", "pnpm-lock.yml":
		return ParsePnpmLock(data)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")):
		return ParsePackageLock(data)
	case isBerry(data), bytes.Contains(data, []byte("# yarn lockfile v1")):
		return ParseYarnLock(data)
	case bytes.HasPrefix(trimmed, []byte("lockfileVersion:")):
		return ParsePnpmLock(data)
	}
	return nil, fmt.Errorf("%q is not a lockfile npmgate knows (package-lock.json, npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml)", name)
}

// collector gathers entries, validating and deduplicating them.
type collector struct {
	format  Format
	byKey   map[string]int
	pkgs    []Package
	skipped []string
}

func newCollector(f Format) *collector {
	return &collector{format: f, byKey: map[string]int{}}
}

func (c *collector) skip(entry, reason string) {
	c.skipped = append(c.skipped, entry+": "+reason)
}

// add records name@version unless either is not something npm could
// request; entry names the lockfile entry in the skip message.
func (c *collector) add(entry, name, version, integrity string) {
	if err := npm.ValidateName(name); err != nil {
		c.skip(entry, fmt.Sprintf("name %q: %v", name, err))
		return
	}
	if err := npm.ValidateVersionOrTag(version); err != nil {
		c.skip(entry, fmt.Sprintf("version %q: %v", version, err))
		return
	}
	integrity = strings.Join(strings.Fields(integrity), " ")
	key := name + "@" + version
	if i, ok := c.byKey[key]; ok {
		if c.pkgs[i].Integrity == "" {
			c.pkgs[i].Integrity = integrity
		}
		return
	}
	c.byKey[key] = len(c.pkgs)
	c.pkgs = append(c.pkgs, Package{Name: name, Version: version, Integrity: integrity})
}

func (c *collector) done() *Lockfile {
	slices.SortFunc(c.pkgs, func(a, b Package) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	slices.Sort(c.skipped)
	return &Lockfile{Format: c.format, Packages: c.pkgs, Skipped: c.skipped}
}

// registryTarball reports whether a resolved URL is a registry tarball
// (http or https, a /-/ path to a .tgz file); "" means the lockfile did not
// record one, which npm does for registry packages when
// omit-lockfile-registry-resolved is set.
func registryTarball(resolved string) bool {
	if resolved == "" {
		return true
	}
	u, err := url.Parse(resolved)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return strings.Contains(u.Path, "/-/") && strings.HasSuffix(u.Path, ".tgz")
}

// shorten keeps skip messages readable.
func shorten(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// sha1Integrity turns the hex sha1 of a yarn classic "resolved" URL
// fragment into an SRI string, or "".
func sha1Integrity(hexSum string) string {
	sum, err := hex.DecodeString(hexSum)
	if err != nil || len(sum) != 20 {
		return ""
	}
	return "sha1-" + base64.StdEncoding.EncodeToString(sum)
}
