package npm

import (
	"encoding/json"
	"errors"
)

// The functions in this file walk JSON that json.Valid has already accepted,
// handing out sub-slices of the input instead of decoding it. A multi-MB
// packument is thereby split into its members without a second copy of its
// bytes, which is what keeps a cold render within a small multiple of the
// document's size. They must never be called on unvalidated input.

var errNotObject = errors.New("not a JSON object")

// eachMember calls fn for every member of the JSON object that starts at
// data's first non-space byte. key is the member's unquoted, unescaped name
// and value the raw bytes of its value. fn returning false stops the walk.
func eachMember(data []byte, fn func(key string, value []byte) bool) error {
	return eachMemberAt(data, func(key string, start, end int) bool {
		return fn(key, data[start:end])
	})
}

// eachMemberAt is eachMember with the value given as offsets into data, for
// callers that splice new bytes into the document.
func eachMemberAt(data []byte, fn func(key string, start, end int) bool) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errNotObject
	}
	i++
	for {
		i = skipSpace(data, i)
		if i >= len(data) {
			return errNotObject
		}
		if data[i] == '}' {
			return nil
		}
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		kEnd := skipString(data, i)
		key := unquote(data[i:kEnd])
		i = skipSpace(data, kEnd)
		i = skipSpace(data, i+1) // the ':'
		vEnd := skipValue(data, i)
		if !fn(key, i, vEnd) {
			return nil
		}
		i = vEnd
	}
}

// member finds one member of an object; ok is false when it is absent.
func member(obj []byte, name string) (value []byte, ok bool) {
	_ = eachMember(obj, func(k string, v []byte) bool {
		if k == name {
			value, ok = v, true
			return false
		}
		return true
	})
	return value, ok
}

// stringValue decodes a raw JSON string; anything else yields "".
func stringValue(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	return unquote(raw)
}

func unquote(raw []byte) string {
	simple := true
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' {
			simple = false
			break
		}
	}
	if simple {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ""
	}
	return s
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at data[i].
func skipString(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(data)
}

// skipValue returns the index just past the value starting at data[i].
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = skipString(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	default: // number, true, false, null
		j := i
		for j < len(data) {
			switch data[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}
