package proxy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/npmgate/npmgate/proxy/npm"
)

// Kind is what a request asks for.
type Kind int

// Route kinds.
const (
	KindNotFound   Kind = iota
	KindPackument       // GET /{name}
	KindVersion         // GET /{name}/{version-or-tag}
	KindTarball         // GET /{name}/-/{file}
	KindPing            // GET /-/ping
	KindAPI             // anything else under /-/
	KindRev             // /{name}/-rev/{rev}: unpublish and metadata writes
	KindTarballRev      // /{name}/-/{file}/-rev/{rev}: tarball delete
)

// Route is a parsed request path within a feed.
type Route struct {
	Kind    Kind
	Name    string // package name, "@scope/name" for scoped packages
	Version string // version or dist-tag, for KindVersion
	File    string // tarball file name, for KindTarball and KindTarballRev
	Rev     string // document revision, for KindRev and KindTarballRev
	API     string // the path under /-/, for KindPing and KindAPI
}

// errBadPath is a path that no npm client sends: a 400 before anything
// else happens.
var errBadPath = errors.New("bad request path")

// ParsePath parses the part of a request path below a feed's mount point
// (it starts with '/'; the query is already cut off). Percent-escapes are
// decoded exactly once per segment, and an encoded '/' is accepted only as
// the separator of a scoped name ("@scope%2fname", in either case), so
// "..%2f.." and double encodings never become path separators.
func ParsePath(raw string) (Route, error) {
	if raw == "" || raw[0] != '/' {
		return Route{}, fmt.Errorf("%w: must start with '/'", errBadPath)
	}
	rest := raw[1:]
	if rest == "-" || strings.HasPrefix(rest, "-/") {
		api := strings.TrimPrefix(rest, "-")
		if api == "/ping" || api == "/ping/" {
			return Route{Kind: KindPing, API: api}, nil
		}
		return Route{Kind: KindAPI, API: api}, nil
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return Route{Kind: KindNotFound}, nil
	}
	segs := strings.Split(rest, "/")
	// Decoded here and only indexed below: a slice returned from a helper
	// would move to the heap (one more allocation per request).
	dec := make([]string, len(segs))
	for i, s := range segs {
		d, err := unescapeSegment(s)
		if err != nil {
			return Route{}, err
		}
		dec[i] = d
	}
	name, n, err := splitName(dec)
	if err != nil {
		return Route{}, err
	}
	return routeBelow(name, dec[n:])
}

// splitName takes the package name off the front of a package path's
// decoded segments: "name" or "@scope/name" (the '/' as a segment
// separator or encoded); n is how many segments it took.
func splitName(dec []string) (name string, n int, err error) {
	var tail []string
	switch {
	case strings.HasPrefix(dec[0], "@") && strings.Contains(dec[0], "/"):
		name, tail = dec[0], dec[1:]
	case strings.HasPrefix(dec[0], "@"):
		if len(dec) < 2 || strings.Contains(dec[1], "/") {
			return "", 0, fmt.Errorf("%w: a scoped name is @scope/name", errBadPath)
		}
		name, tail = dec[0]+"/"+dec[1], dec[2:]
	default:
		name, tail = dec[0], dec[1:]
	}
	if err := npm.ValidateName(name); err != nil {
		return "", 0, err
	}
	for _, t := range tail {
		if strings.Contains(t, "/") {
			return "", 0, fmt.Errorf("%w: encoded '/' outside a scoped name", errBadPath)
		}
	}
	return name, len(dec) - len(tail), nil
}

// routeBelow is the route of what follows a package's name: its
// packument, a version or tag, a revision, a tarball (and its revision).
func routeBelow(name string, tail []string) (Route, error) {
	switch {
	case len(tail) == 0:
		return Route{Kind: KindPackument, Name: name}, nil
	case len(tail) == 1 && tail[0] != "-":
		if err := npm.ValidateVersionOrTag(tail[0]); err != nil {
			return Route{}, fmt.Errorf("%w: %v", errBadPath, err)
		}
		return Route{Kind: KindVersion, Name: name, Version: tail[0]}, nil
	case len(tail) == 2 && tail[0] == "-rev":
		if err := validateRev(tail[1]); err != nil {
			return Route{}, err
		}
		return Route{Kind: KindRev, Name: name, Rev: tail[1]}, nil
	case (len(tail) == 2 || len(tail) == 4) && tail[0] == "-":
		if err := npm.ValidateTarballFile(tail[1]); err != nil {
			return Route{}, fmt.Errorf("%w: %v", errBadPath, err)
		}
		if len(tail) == 2 {
			return Route{Kind: KindTarball, Name: name, File: tail[1]}, nil
		}
		if tail[2] != "-rev" {
			break
		}
		if err := validateRev(tail[3]); err != nil {
			return Route{}, err
		}
		return Route{Kind: KindTarballRev, Name: name, File: tail[1], Rev: tail[3]}, nil
	}
	return Route{Kind: KindNotFound, Name: name}, nil
}

func validateRev(rev string) error {
	if rev == "" || len(rev) > 128 {
		return fmt.Errorf("%w: bad revision", errBadPath)
	}
	for i := 0; i < len(rev); i++ {
		if c := rev[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("%w: bad revision", errBadPath)
		}
	}
	return nil
}

// unescapeSegment decodes %XX escapes once. '+' stays '+' (it is a path,
// not a query: "1.0.0+build.1" must survive). Control bytes, backslashes
// and malformed escapes are refused.
func unescapeSegment(s string) (string, error) {
	if !strings.ContainsRune(s, '%') {
		return s, checkSegment(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("%w: malformed escape", errBadPath)
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	out := b.String()
	return out, checkSegment(out)
}

func checkSegment(s string) error {
	if s == "" || s == "." || s == ".." {
		return fmt.Errorf("%w: empty or dot segment", errBadPath)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("%w: control character or backslash", errBadPath)
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
