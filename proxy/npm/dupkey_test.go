package npm

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dupTwoDist is a version with two "dist" members, the second pointing
// somewhere else: npm (JSON.parse) reads the last one.
const dupTwoDist = `{"name":"x","versions":{"1.0.0":{"name":"x","version":"1.0.0",
	"dist":{"tarball":"https://registry.npmjs.org/x/-/x-1.0.0.tgz","integrity":"sha512-AAAA"},
	"dist":{"tarball":"http://evil.example/x.tgz","integrity":"sha512-BBBB"}}}}`

func TestDuplicateKey(t *testing.T) {
	// Over linearKeys members, so that the map is used too.
	many := func(extra string) string {
		var b strings.Builder
		b.WriteString(`{"versions":{`)
		for i := range 3 * linearKeys {
			fmt.Fprintf(&b, `"1.0.%d":{"dist":{}},`, i)
		}
		b.WriteString(extra + `}}`)
		return b.String()
	}
	obj := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + `"end":0}`)
		return b.String()
	}
	for _, c := range []struct {
		name, doc string
		path      string // "" when there is no duplicate
	}{
		{"none", `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":1}]}`, ""},
		{"top level", `{"name":"a","name":"b"}`, "name"},
		{"two dist", dupTwoDist, `versions["1.0.0"].dist`},
		{"inside dist", `{"versions":{"1.0.0":{"dist":{"tarball":"a","tarball":"b"}}}}`, `versions["1.0.0"].dist.tarball`},
		{"two versions", `{"versions":{"1.0.0":{},"2.0.0":{},"1.0.0":{}}}`, `versions["1.0.0"]`},
		{"dist-tags", `{"dist-tags":{"latest":"1.0.0","latest":"6.6.6"}}`, `dist-tags.latest`},
		{"time", `{"time":{"1.0.0":"a","modified":"b","1.0.0":"c"}}`, `time["1.0.0"]`},
		{"escaped name", `{"versions":{"1.0.0":{"dist":{},"d\u0069st":{}}}}`, `versions["1.0.0"].dist`},
		{"escaped slash", `{"a/b":1,"a\/b":2}`, `["a/b"]`},
		{"invalid UTF-8 reads as U+FFFD", "{\"v\xff\":1,\"v\\ufffd\":2}", "[\"v\uFFFD\"]"},
		{"in an array", `{"maintainers":[{"name":"a"},{"name":"b","name":"c"}]}`, `maintainers[1].name`},
		{"top-level array", `[{},{"a":1,"a":2}]`, `[1].a`},
		{"many members", many(`"1.0.5":{}`), `versions["1.0.5"]`},
		{"many members, none twice", many(`"2.0.0":{}`), ""},
		{"large siblings with the same names", `{"a":` + obj(40, "") + `,"b":` + obj(40, "") + `,"c":[` + obj(50, "") + `,` + obj(50, "") + `]}`, ""},
		{"large object inside a large object", `{"a":` + obj(40, `"in":`+obj(40, `"k3":1,`)+`,`) + `}`, `a.in.k3`},
		{"large object, a name of its first ones again", `{"a":` + obj(40, `"k2":1,`) + `}`, `a.k2`},
		{"same name, sibling objects", `{"a":{"x":1},"b":{"x":1},"x":{"a":1,"b":2}}`, ""},
		{"strings that look like keys", `{"a":"\"a\":","b":["a","a"],"c":"{\"a\":1,\"a\":2}"}`, ""},
		{"after a nested object closes", `{"a":{"b":1,"c":{"d":1}},"e":1,"a":2}`, "a"},
		{"after an array closes", `{"a":[1,{"b":1}],"b":2,"a":3}`, "a"},
		{"not an object", `[1,2,"a","a"]`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !json.Valid([]byte(c.doc)) {
				t.Fatalf("test document is not valid JSON: %s", c.doc)
			}
			path, found := DuplicateKey([]byte(c.doc))
			if found != (c.path != "") || path != c.path {
				t.Errorf("DuplicateKey = %q, %v; want %q, %v", path, found, c.path, c.path != "")
			}
			if found != referenceDuplicate([]byte(c.doc)) {
				t.Errorf("the reference decoder disagrees")
			}
		})
	}
}

// referenceDuplicate finds a duplicate name with encoding/json's tokenizer,
// slowly and obviously.
func referenceDuplicate(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object    bool
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				if top != nil && top.object {
					top.expectKey = true
				}
				stack = append(stack, &frame{object: true, keys: map[string]bool{}, expectKey: true})
			case '[':
				if top != nil && top.object {
					top.expectKey = true
				}
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.object && top.expectKey {
				if top.keys[tok] {
					return true
				}
				top.keys[tok] = true
				top.expectKey = false
				continue
			}
			if top != nil && top.object {
				top.expectKey = true
			}
		default:
			if top != nil && top.object {
				top.expectKey = true
			}
		}
	}
}

// FuzzDuplicateKey checks DuplicateKey against the reference decoder on
// valid JSON, and that it survives anything else.
func FuzzDuplicateKey(f *testing.F) {
	for _, name := range []string{"scoped.json", "tombstone.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(dupTwoDist))
	f.Add([]byte(`{"a":{"b":[{"c":1,"c\u0000":2}]},"a":3}`))
	f.Add([]byte("{\"\xff\":1,\"\xfe\":2}"))
	f.Add([]byte(`{"a":1,"a`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path, found := DuplicateKey(data)
		if !json.Valid(data) {
			return
		}
		if want := referenceDuplicate(data); found != want {
			t.Fatalf("DuplicateKey(%q) = %q, %v; the reference says %v", data, path, found, want)
		}
		if found && path == "" {
			t.Fatalf("DuplicateKey(%q) found a duplicate but no path", data)
		}
	})
}

// TestParseRefusesDuplicateKeys: an upstream document with a duplicate name
// anywhere is not a packument npmgate serves (the feed answers 502 and
// keeps its last good snapshot).
func TestParseRefusesDuplicateKeys(t *testing.T) {
	for name, doc := range map[string]string{
		"two dist":          dupTwoDist,
		"two tarballs":      `{"name":"x","versions":{"1.0.0":{"dist":{"tarball":"https://a/x-1.0.0.tgz","tarball":"http://evil/x.tgz"}}}}`,
		"two versions":      `{"name":"x","versions":{"1.0.0":{"dist":{"tarball":"https://a/x-1.0.0.tgz"}},"1.0.0":{"dist":{"tarball":"http://evil/x-1.0.0.tgz"}}}}`,
		"two names":         `{"name":"x","name":"y","versions":{}}`,
		"two dist-tags":     `{"name":"x","dist-tags":{"latest":"1.0.0","latest":"6.6.6"}}`,
		"two scripts":       `{"name":"x","versions":{"1.0.0":{"scripts":{"test":"t"},"scripts":{"postinstall":"evil"},"dist":{"tarball":"https://a/x-1.0.0.tgz"}}}}`,
		"inside scripts":    `{"name":"x","versions":{"1.0.0":{"scripts":{"install":"a","install":"b"},"dist":{"tarball":"https://a/x-1.0.0.tgz"}}}}`,
		"in time":           `{"name":"x","time":{"modified":"a","modified":"b"}}`,
		"escaped twin":      `{"name":"x","versions":{"1.0.0":{"dist":{"tarball":"https://a/x-1.0.0.tgz"},"\u0064ist":{"tarball":"http://evil/x-1.0.0.tgz"}}}}`,
		"unknown top-level": `{"name":"x","readme":"a","readme":"b"}`,
	} {
		p, err := Parse([]byte(doc), 0)
		if !errors.Is(err, ErrInvalidPackument) {
			t.Errorf("%s: Parse = %v, %v; want ErrInvalidPackument", name, p, err)
		} else if !strings.Contains(err.Error(), "twice") {
			t.Errorf("%s: the error does not say what is wrong: %v", name, err)
		}
	}
}

// TestRecordedDocumentsHaveNoDuplicates: every recorded registry document
// (real npmjs answers) passes, so refusing duplicates costs no real
// package.
func TestRecordedDocumentsHaveNoDuplicates(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "registry", "packuments", "*.json.gz"))
	if len(files) == 0 {
		t.Skip("no recorded packuments")
	}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if path, dup := DuplicateKey(data); dup {
			t.Errorf("%s has %s twice", filepath.Base(file), path)
		}
	}
	for _, name := range []string{"scoped.json", "tombstone.json"} {
		if path, dup := DuplicateKey(readTestdata(t, name)); dup {
			t.Errorf("%s has %s twice", name, path)
		}
	}
}
