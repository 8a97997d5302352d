package npm

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
)

// DuplicateKey reports the first object member, anywhere in a JSON
// document, whose name an earlier member of the same object already has,
// and where it is ("versions[\"1.0.0\"].dist"). Names are compared as a
// JSON parser decodes them, so "dist" and "d\u0069st" are one name.
//
// A document with a duplicate has two readings: JavaScript's JSON.parse
// keeps the last member, a walker that stops at the first match keeps the
// first. npmgate checks one and a client would use the other, so such a
// document is refused before anything of it is kept or served.
//
// data must be valid JSON (json.Valid); on anything else the answer means
// nothing, but DuplicateKey neither panics nor reads out of bounds. It is
// one pass over the bytes that decodes nothing but escaped names.
func DuplicateKey(data []byte) (path string, found bool) {
	d := dupScanner{seed: maphash.MakeSeed()}
	return d.scan(data)
}

// dupFrame is one open object or array.
type dupFrame struct {
	object bool
	// keys is where this object's names start in dupScanner.keys.
	keys int
	// hashed is set once the object has too many names for a linear
	// search (a packument's versions and time have thousands): their
	// hashes are then collected at this frame's depth and sorted when
	// the object closes.
	hashed bool
	// index is the current element of an array; key the current member
	// of an object (for the path of a duplicate).
	index int
	key   []byte
}

// linearKeys is how many names an object has before its names are
// hashed: most objects have a few, a version object a few dozen.
const linearKeys = 32

type dupScanner struct {
	stack []dupFrame
	keys  [][]byte // the names of every open object, innermost last
	// hashes holds the names of the hashed object open at each depth,
	// reused from one object to the next: sorting them finds a
	// duplicate without a map, in memory that does not grow with the
	// document.
	hashes [][]uint64
	seed   maphash.Seed
}

func (d *dupScanner) scan(data []byte) (string, bool) {
	expectKey := false
	for i := 0; i < len(data); {
		switch c := data[i]; c {
		case '{':
			d.stack = append(d.stack, dupFrame{object: true, keys: len(d.keys)})
			expectKey = true
			i++
		case '[':
			d.stack = append(d.stack, dupFrame{keys: len(d.keys)})
			expectKey = false
			i++
		case '}', ']':
			if len(d.stack) > 0 {
				if path, dup := d.pop(); dup {
					return path, true
				}
			}
			expectKey = false
			i++
		case ',':
			if n := len(d.stack); n > 0 {
				top := &d.stack[n-1]
				expectKey = top.object
				if !top.object {
					top.index++
				}
			}
			i++
		case '"':
			end := stringEnd(data, i)
			if end-i < 2 {
				return "", false // unterminated: not valid JSON
			}
			if expectKey && len(d.stack) > 0 {
				if d.add(&d.stack[len(d.stack)-1], data[i:end]) {
					return d.path(), true
				}
				expectKey = false
			}
			i = end
		default:
			i++
		}
	}
	return "", false
}

// add records name (quoted, as in the document) in the innermost object,
// obj, and reports whether obj is already known to have it.
func (d *dupScanner) add(obj *dupFrame, quoted []byte) bool {
	name := quoted[1 : len(quoted)-1]
	if !plain(name) {
		// Escapes decode, and invalid UTF-8 becomes U+FFFD, as in any
		// parser that reads the document after npmgate.
		var s string
		if json.Unmarshal(quoted, &s) == nil {
			name = []byte(s)
		}
	}
	obj.key = name
	depth := len(d.stack) - 1
	if obj.hashed {
		d.hashes[depth] = append(d.hashes[depth], maphash.Bytes(d.seed, name))
		d.keys = append(d.keys, name)
		return false
	}
	own := d.keys[obj.keys:]
	for _, k := range own {
		if bytes.Equal(k, name) {
			return true
		}
	}
	d.keys = append(d.keys, name)
	if len(own) < linearKeys {
		return false
	}
	obj.hashed = true
	for len(d.hashes) <= depth {
		d.hashes = append(d.hashes, nil)
	}
	hs := d.hashes[depth][:0]
	for i := obj.keys; i < len(d.keys); i++ {
		hs = append(hs, maphash.Bytes(d.seed, d.keys[i]))
	}
	d.hashes[depth] = hs
	return false
}

// pop closes the innermost object or array; for a hashed object it
// reports the path of a name it has twice.
func (d *dupScanner) pop() (string, bool) {
	n := len(d.stack) - 1
	f := &d.stack[n]
	if f.hashed {
		hs := d.hashes[n]
		slices.Sort(hs)
		for i := 1; i < len(hs); i++ {
			if hs[i] == hs[i-1] {
				if name, dup := d.withHash(f, hs[i]); dup {
					f.key = name
					return d.path(), true
				}
			}
		}
		d.hashes[n] = hs[:0]
	}
	d.keys = d.keys[:f.keys]
	d.stack = d.stack[:n]
	return "", false
}

// stringEnd is skipString at memchr's speed: most of a packument's bytes
// are inside strings (readmes, descriptions).
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			break
		}
		j += k
		backslashes := 0
		for p := j - 1; p > i && data[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return j + 1
		}
	}
	return len(data)
}

// withHash looks among the names of obj with hash h for one that is
// there twice (two different names with one 64-bit hash are possible, if
// rare).
func (d *dupScanner) withHash(obj *dupFrame, h uint64) ([]byte, bool) {
	var same [][]byte
	for _, k := range d.keys[obj.keys:] {
		if maphash.Bytes(d.seed, k) != h {
			continue
		}
		for _, o := range same {
			if bytes.Equal(o, k) {
				return k, true
			}
		}
		same = append(same, k)
	}
	return nil, false
}

// plain is true for a name that decodes to its own bytes: ASCII, no
// escapes.
func plain(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// path names the member being read: its key in every enclosing object and
// its index in every enclosing array.
func (d *dupScanner) path() string {
	var b strings.Builder
	for i, f := range d.stack {
		switch {
		case !f.object:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		case isIdentifier(f.key):
			if i > 0 {
				b.WriteByte('.')
			}
			b.Write(f.key)
		default:
			b.WriteString("[" + strconv.Quote(string(f.key)) + "]")
		}
	}
	return b.String()
}

// isIdentifier is true for names that read well after a dot: letters,
// digits, '_', '-' and '$', not starting with a digit.
func isIdentifier(k []byte) bool {
	if len(k) == 0 || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '$') {
			return false
		}
	}
	return true
}
