package npm

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
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
	// search (a packument's versions and time have thousands); they are
	// then also in dupScanner.sets at this frame's depth.
	hashed bool
	// index is the current element of an array; key the current member
	// of an object (for the path of a duplicate).
	index int
	key   []byte
}

// linearKeys is how many names an object has before a hash set joins the
// linear search: most objects have a few, a version object a few dozen.
const linearKeys = 32

// maxKeptSet bounds the hash set kept for reuse at a depth: a larger one
// is dropped rather than cleared, so that clearing never costs more than
// filling did.
const maxKeptSet = 1024

type dupScanner struct {
	stack []dupFrame
	keys  [][]byte // the names of every open object, innermost last
	// sets maps the hash of each name of a hashed object to its index in
	// keys, one per depth, reused from one object to the next.
	sets []map[uint64]int
	seed maphash.Seed
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
				d.pop()
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
// obj, and reports whether obj already had it.
func (d *dupScanner) add(obj *dupFrame, quoted []byte) bool {
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 || !isASCII(name) {
		// Escapes decode, and invalid UTF-8 becomes U+FFFD, as in any
		// parser that reads the document after npmgate.
		var s string
		if json.Unmarshal(quoted, &s) == nil {
			name = []byte(s)
		}
	}
	obj.key = name
	own := d.keys[obj.keys:]
	if !obj.hashed {
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
		set := d.set(len(d.stack) - 1)
		for i := obj.keys; i < len(d.keys); i++ {
			set[maphash.Bytes(d.seed, d.keys[i])] = i
		}
		return false
	}
	set := d.sets[len(d.stack)-1]
	h := maphash.Bytes(d.seed, name)
	if i, ok := set[h]; ok {
		if bytes.Equal(d.keys[i], name) {
			return true
		}
		// Two names with one hash: rare enough to search them all.
		for _, k := range own {
			if bytes.Equal(k, name) {
				return true
			}
		}
	}
	set[h] = len(d.keys)
	d.keys = append(d.keys, name)
	return false
}

// set returns an empty hash set for an object at depth.
func (d *dupScanner) set(depth int) map[uint64]int {
	for len(d.sets) <= depth {
		d.sets = append(d.sets, nil)
	}
	if d.sets[depth] == nil {
		d.sets[depth] = make(map[uint64]int, 4*linearKeys)
	}
	return d.sets[depth]
}

// pop closes the innermost object or array.
func (d *dupScanner) pop() {
	n := len(d.stack) - 1
	f := d.stack[n]
	d.keys = d.keys[:f.keys]
	if f.hashed {
		if len(d.sets[n]) > maxKeptSet {
			d.sets[n] = nil
		} else {
			clear(d.sets[n])
		}
	}
	d.stack = d.stack[:n]
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

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
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
