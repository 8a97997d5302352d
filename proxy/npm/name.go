// Package npm holds what npmgate knows about the npm registry's data: package
// names, packuments, dist-tags and integrity strings. It does no I/O.
package npm

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidName is returned for a package name that npm would never request.
var ErrInvalidName = errors.New("invalid package name")

// MaxNameLength is npm's limit on a full package name, scope included.
const MaxNameLength = 214

// ValidateName checks a package name for reading. Legacy names (upper case,
// and the characters encodeURIComponent leaves alone such as ~ ! * ' ( ))
// are accepted because old packages such as JSONStream still carry them; a
// publish must apply the stricter rules for new names.
//
// Only ASCII is accepted: homoglyphs, zero-width and direction-override
// characters never reach storage or an upstream request.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidName, MaxNameLength)
	}
	scope, pkg, scoped := SplitScope(name)
	if scoped {
		if err := validatePart(scope); err != nil {
			return fmt.Errorf("%w: scope: %v", ErrInvalidName, err)
		}
	} else if strings.ContainsRune(name, '/') {
		return fmt.Errorf("%w: only scoped names contain '/'", ErrInvalidName)
	}
	if err := validatePart(pkg); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	if !scoped {
		switch strings.ToLower(pkg) {
		case "node_modules", "favicon.ico":
			return fmt.Errorf("%w: %q is reserved", ErrInvalidName, pkg)
		}
	}
	return nil
}

// SplitScope splits "@scope/name" into "scope" and "name". For an unscoped
// name it returns "", name, false. It does not validate.
func SplitScope(name string) (scope, pkg string, scoped bool) {
	if !strings.HasPrefix(name, "@") {
		return "", name, false
	}
	i := strings.IndexByte(name, '/')
	if i < 0 {
		return name[1:], "", true
	}
	return name[1:i], name[i+1:], true
}

// UnscopedName returns the part of name after the scope, which is how npm
// names tarball files ("@types/node" has files "node-1.0.0.tgz").
func UnscopedName(name string) string {
	_, pkg, _ := SplitScope(name)
	return pkg
}

// TarballFile is the file name npm gives a version's tarball:
// "node-1.0.0.tgz" for @types/node 1.0.0. It is the one place that
// spelling is written.
func TarballFile(name, version string) string {
	return UnscopedName(name) + "-" + version + ".tgz"
}

func validatePart(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if s[0] == '.' || s[0] == '_' {
		return errors.New("must not start with '.' or '_'")
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return fmt.Errorf("character %q is not allowed", s[i])
		}
	}
	return nil
}

// nameByte reports whether c may appear in a package name: the characters
// JavaScript's encodeURIComponent leaves unescaped.
func nameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '*', '\'', '(', ')':
		return true
	}
	return false
}

// ValidateVersionOrTag checks the version-or-dist-tag path segment of
// GET /{name}/{version}.
func ValidateVersionOrTag(s string) error {
	if s == "" || len(s) > 256 {
		return errors.New("invalid version or tag")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(nameByte(c) || c == '+') || c == '\'' || c == '(' || c == ')' || c == '*' || c == '!' {
			return fmt.Errorf("invalid version or tag: character %q is not allowed", c)
		}
	}
	if s == "." || s == ".." {
		return errors.New("invalid version or tag")
	}
	return nil
}

// ValidateTarballFile checks a tarball file name: a plain file name ending
// in .tgz, with nothing that could act as a path.
func ValidateTarballFile(s string) error {
	if len(s) < 5 || len(s) > 255 || !strings.HasSuffix(s, ".tgz") {
		return errors.New("invalid tarball file name")
	}
	if s[0] == '.' || strings.Contains(s, "..") {
		return errors.New("invalid tarball file name")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+'
		if !ok {
			return fmt.Errorf("invalid tarball file name: character %q is not allowed", c)
		}
	}
	return nil
}

// ValidateNewName applies npm's rules for new packages on top of
// ValidateName: lower case only, and none of the legacy characters
// ~ ! * ' ( ).
func ValidateNewName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			return fmt.Errorf("%w: new package names must be lower case", ErrInvalidName)
		case c == '~' || c == '!' || c == '*' || c == '\'' || c == '(' || c == ')':
			return fmt.Errorf("%w: new package names cannot contain %q", ErrInvalidName, c)
		}
	}
	return nil
}
