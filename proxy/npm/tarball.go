package npm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// packageTarball is what a publish learns from its tarball: the one
// package.json an installer extracts, and what npm would compute from the
// files themselves.
type packageTarball struct {
	manifest     map[string]json.RawMessage
	fileCount    int
	unpackedSize int64
	// bindingGyp: a binding.gyp at the package root, for which npm runs
	// "node-gyp rebuild" when the package has no install script of its own.
	bindingGyp bool
	// shrinkwrap: an npm-shrinkwrap.json at the root, which npm installs
	// from.
	shrinkwrap bool
}

// Bounds on reading a tarball, so that a gzip bomb or a tarball of empty
// entries costs little. npm's largest packages have tens of thousands of
// files.
const (
	MaxTarEntries  = 100_000
	maxManifestLen = 4 << 20
)

var errInflate = errors.New("the tarball inflates to more than the limit")

// readManifest reads a package tarball without extracting anything: its
// package.json, refused when more than one entry would be extracted to it
// (npmgate would vet one and npm install the other), and its file facts.
// maxInflate bounds the tar stream inside it.
func readManifest(tgz []byte, maxInflate int64) (*packageTarball, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, errors.New("not gzip")
	}
	tr := tar.NewReader(&inflateLimit{r: zr, left: maxInflate})
	pt := &packageTarball{}
	var pkgJSON []byte
	candidates := 0
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errInflate) {
			return nil, fmt.Errorf("the tarball inflates to more than %d MiB", maxInflate>>20)
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive: %v", err)
		}
		if entries >= MaxTarEntries {
			return nil, fmt.Errorf("more than %d entries", MaxTarEntries)
		}
		regular := h.Typeflag == tar.TypeReg // the reader reports TypeRegA as TypeReg
		if regular || h.Typeflag == tar.TypeCont {
			pt.fileCount++
			pt.unpackedSize += h.Size
		}
		if landsAt(h.Name, "binding.gyp") {
			pt.bindingGyp = true
		}
		if landsAt(h.Name, "npm-shrinkwrap.json") {
			pt.shrinkwrap = true
		}
		if !landsAt(h.Name, "package.json") {
			continue
		}
		candidates++
		if candidates > 1 {
			return nil, fmt.Errorf("more than one entry is extracted to package.json (%q is another); an installer would use a file npmgate did not check", h.Name)
		}
		if !regular {
			return nil, fmt.Errorf("%s is not a regular file", h.Name)
		}
		if _, rest, _ := strings.Cut(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/"); rest != "package.json" {
			return nil, fmt.Errorf("%q is not named package.json in the package directory", h.Name)
		}
		if h.Size > maxManifestLen {
			return nil, errors.New("package.json is larger than 4 MiB")
		}
		if pkgJSON, err = io.ReadAll(io.LimitReader(tr, maxManifestLen)); err != nil {
			return nil, err
		}
	}
	if pkgJSON == nil {
		return nil, errors.New("no package.json in the first directory of the tarball")
	}
	if !json.Valid(pkgJSON) {
		return nil, errors.New("package.json is not valid JSON")
	}
	// Its members are served as they are: one reading only.
	if p, dup := DuplicateKey(pkgJSON); dup {
		return nil, fmt.Errorf("package.json has the key %s twice", p)
	}
	if err := json.Unmarshal(pkgJSON, &pt.manifest); err != nil {
		return nil, fmt.Errorf("package.json: %v", err)
	}
	return pt, nil
}

// landsAt reports whether an installer could extract the tar entry name to
// the file want at the package root. npm (node-tar with strip: 1) drops the
// first path component whatever it is; other tools resolve "." and ".."
// first. Both readings count, as do Windows separators and the file
// systems of macOS and Windows, which ignore case (and, on Windows,
// trailing dots and spaces).
func landsAt(name, want string) bool {
	name = strings.ReplaceAll(name, `\`, "/")
	_, stripped, _ := strings.Cut(name, "/")
	if sameRootFile(path.Clean("/"+stripped), want) {
		return true
	}
	_, resolved, _ := strings.Cut(strings.TrimPrefix(path.Clean("/"+name), "/"), "/")
	return sameRootFile("/"+resolved, want)
}

func sameRootFile(p, want string) bool {
	return len(p) > 1 && strings.EqualFold(strings.TrimRight(p[1:], ". "), want)
}

// inflateLimit fails a read past left bytes, so that a tarball cut at the
// limit is an error rather than an archive that seems to end there.
type inflateLimit struct {
	r    io.Reader
	left int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errInflate
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// tarballFields are the version fields a publish takes from the tarball's
// package.json, never from the document: what npm runs, installs, links
// and checks the platform against.
var tarballFields = []string{
	"scripts", "dependencies", "optionalDependencies", "peerDependencies",
	"peerDependenciesMeta", "bundleDependencies", "bundledDependencies", "acceptDependencies",
	"bin", "directories", "man", "engines", "os", "cpu", "libc", "license",
}

// hasMember reports whether raw is an object with the member name.
func hasMember(raw json.RawMessage, name string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	_, ok := m[name]
	return ok
}

// installFacts says whether npm runs an install script for the package
// (hasInstallScript) and whether that is node-gyp's, for a binding.gyp
// and no install or preinstall script of the package's own (gypfile).
func installFacts(pt *packageTarball) (installScript, gyp bool, err error) {
	var scripts map[string]json.RawMessage
	if raw, ok := pt.manifest["scripts"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &scripts); err != nil {
			return false, false, errors.New("scripts is not an object")
		}
	}
	_, install := scripts["install"]
	_, preinstall := scripts["preinstall"]
	_, postinstall := scripts["postinstall"]
	gyp = pt.bindingGyp && !install && !preinstall && string(pt.manifest["gypfile"]) != "false"
	return install || preinstall || postinstall || gyp, gyp, nil
}
