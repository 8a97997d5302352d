package npm

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestValidateName(t *testing.T) {
	long := strings.Repeat("a", 214)
	tests := []struct {
		name string
		ok   bool
	}{
		{"lodash", true},
		{"@types/node", true},
		{"JSONStream", true}, // legacy upper case is readable
		{"lodash.merge", true},
		{"con", true},
		{long, true},
		{long + "a", false},
		{"", false},
		{".bin", false},
		{"_private", false},
		{"node_modules", false},
		{"favicon.ico", false},
		{"__proto__", false},
		{"@scope/", false},
		{"@/name", false},
		{"@scope/.hidden", false},
		{"a/b", false},
		{"@a/b/c", false},
		{"l\u043edash", false},   // Cyrillic o
		{"lodash\u200b", false},  // zero-width space
		{"lodash\u202e", false},  // right-to-left override
		{"foo\\..\\bar", false},  // backslash
		{"foo\x00", false},       // NUL
		{"has space", false},     // space
		{"%2e%2e", false},        // never decoded twice
		{"@scope%2fname", false}, // escapes are the router's business
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) error %v is not ErrInvalidName", tt.name, err)
		}
	}
}

func TestValidateTarballFile(t *testing.T) {
	for f, ok := range map[string]bool{
		"lodash-4.17.21.tgz":            true,
		"widget-2.0.0-beta.1+build.tgz": true,
		"x.tgz":                         true,
		"../x.tgz":                      false,
		"..tgz":                         false,
		"a/b.tgz":                       false,
		"a.tar":                         false,
		".tgz":                          false,
		"evil%2f.tgz":                   false,
		"a b.tgz":                       false,
	} {
		if err := ValidateTarballFile(f); (err == nil) != ok {
			t.Errorf("ValidateTarballFile(%q) = %v, want ok=%v", f, err, ok)
		}
	}
}

func TestParseDigest(t *testing.T) {
	sha512 := "sha512-" + b64(64)
	sha1 := "sha1-" + b64(20)
	tests := []struct {
		name string
		dist Dist
		algo string
		err  bool
	}{
		{"sha512", Dist{Integrity: sha512}, "sha512", false},
		{"strongest of several", Dist{Integrity: sha1 + " " + sha512}, "sha512", false},
		{"sri options", Dist{Integrity: sha512 + "?foo"}, "sha512", false},
		{"shasum fallback", Dist{Shasum: strings.Repeat("ab", 20)}, "sha1", false},
		{"bad integrity falls back to shasum", Dist{Integrity: "sha512-!!!", Shasum: strings.Repeat("ab", 20)}, "sha1", false},
		{"wrong length", Dist{Integrity: "sha512-" + b64(10)}, "", true},
		{"unknown algorithm", Dist{Integrity: "md5-" + b64(16)}, "", true},
		{"nothing", Dist{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDigest(tt.dist)
			if (err != nil) != tt.err || d.Algo != tt.algo {
				t.Fatalf("ParseDigest = %+v, %v; want algo %q err=%v", d, err, tt.algo, tt.err)
			}
		})
	}
}

func b64(n int) string {
	// n zero bytes in base64
	return strings.Repeat("A", (n+2)/3*4-((3-n%3)%3)) + strings.Repeat("=", (3-n%3)%3)
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testBase = "http://npmgate.test/npm/main"

func TestRenderGolden(t *testing.T) {
	for _, name := range []string{"scoped", "tombstone"} {
		for _, abbr := range []bool{false, true} {
			variant := "full"
			if abbr {
				variant = "abbr"
			}
			t.Run(name+"/"+variant, func(t *testing.T) {
				p, err := Parse(readTestdata(t, name+".json"), 0)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				p.Render(&buf, testBase, abbr)
				if !json.Valid(buf.Bytes()) {
					t.Fatalf("rendered document is not valid JSON:\n%s", buf.Bytes())
				}
				var pretty bytes.Buffer
				json.Indent(&pretty, buf.Bytes(), "", "  ")
				golden := filepath.Join("testdata", name+"."+variant+".golden.json")
				if *update {
					os.WriteFile(golden, pretty.Bytes(), 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if !bytes.Equal(pretty.Bytes(), want) {
					t.Errorf("rendered %s differs from %s:\n%s", variant, golden, pretty.Bytes())
				}
			})
		}
	}
}

// TestRenderScoped checks the properties the golden files hold, so that a
// careless -update cannot bless a regression.
func TestRenderScoped(t *testing.T) {
	p, err := Parse(readTestdata(t, "scoped.json"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Unservable != 1 {
		t.Errorf("Unservable = %d, want 1 (the non-object version)", p.Unservable)
	}
	var full, abbr bytes.Buffer
	p.Render(&full, testBase, false)
	p.Render(&abbr, testBase, true)

	var fd map[string]any
	if err := json.Unmarshal(full.Bytes(), &fd); err != nil {
		t.Fatal(err)
	}
	if fd["description"] != "A <widget> & more — ünïcode" || fd["readme"] != "top readme" || fd["_rev"] != "7-abc" {
		t.Errorf("top-level fields changed: %v %v %v", fd["description"], fd["readme"], fd["_rev"])
	}
	if !bytes.Contains(full.Bytes(), []byte("A <widget> & more")) {
		t.Error("<, > and & were escaped; bytes must stay as upstream sent them")
	}
	versions := fd["versions"].(map[string]any)
	want := map[string]string{
		"1.0.0":                "http://npmgate.test/npm/main/@acme/widget/-/widget-1.0.0.tgz",
		"1.1.0":                "http://npmgate.test/npm/main/@acme/widget/-/widget-1.1.0.tgz",
		"2.0.0-beta.1+build.7": "http://npmgate.test/npm/main/@acme/widget/-/widget-2.0.0-beta.1+build.7.tgz",
		"3.0.0":                "http://npmgate.test/npm/main/@acme/widget/-/widget-3.0.0.tgz",
	}
	if len(versions) != len(want) {
		t.Errorf("versions = %d, want %d", len(versions), len(want))
	}
	for v, url := range want {
		dist := versions[v].(map[string]any)["dist"].(map[string]any)
		if dist["tarball"] != url {
			t.Errorf("%s tarball = %v, want %s", v, dist["tarball"], url)
		}
	}
	sig := versions["1.0.0"].(map[string]any)["dist"].(map[string]any)["signatures"]
	if sig == nil {
		t.Error("dist.signatures was dropped")
	}
	if strings.Contains(full.String(), "169.254.169.254") || strings.Contains(abbr.String(), "registry.npmjs.org") {
		t.Error("an upstream URL survived rewriting")
	}

	var ad struct {
		Name     string
		Modified string
		DistTags map[string]string `json:"dist-tags"`
		Versions map[string]map[string]any
		Readme   *string
	}
	if err := json.Unmarshal(abbr.Bytes(), &ad); err != nil {
		t.Fatal(err)
	}
	if ad.Name != "@acme/widget" || ad.Modified != "2024-05-01T00:00:00.000Z" || ad.DistTags["latest"] != "1.1.0" || ad.Readme != nil {
		t.Errorf("abbreviated top level wrong: %+v", ad)
	}
	v110 := ad.Versions["1.1.0"]
	if v110["hasInstallScript"] != true || v110["scripts"] != nil || v110["libc"] == nil {
		t.Errorf("abbreviated 1.1.0 = %v; want hasInstallScript, libc, no scripts", v110)
	}
	if _, ok := ad.Versions["1.0.0"]["hasInstallScript"]; ok {
		t.Error("1.0.0 has no install script")
	}
	if _, ok := ad.Versions["1.0.0"]["readme"]; ok {
		t.Error("abbreviated versions must not carry readme")
	}
	// npm copies license into package-lock.json; nothing installs a
	// dependency's devDependencies.
	if v100 := ad.Versions["1.0.0"]; v100["license"] != "MIT" || v100["devDependencies"] != nil {
		t.Errorf("abbreviated 1.0.0 = %v; want license, no devDependencies", v100)
	}
	if fv := versions["1.0.0"].(map[string]any); fv["devDependencies"] == nil {
		t.Error("the full document lost devDependencies")
	}
}

func TestFiles(t *testing.T) {
	p, err := Parse(readTestdata(t, "scoped.json"), 3)
	if err != nil {
		t.Fatal(err)
	}
	files := p.Files()
	for file, version := range map[string]string{
		"widget-1.0.0.tgz":                "1.0.0",
		"widget-1.1.0.tgz":                "1.1.0",
		"widget-2.0.0-beta.1+build.7.tgz": "2.0.0-beta.1+build.7",
		"widget-3.0.0.tgz":                "3.0.0",
	} {
		v := files[file]
		if v == nil || v.Version != version || v.Source != 3 {
			t.Errorf("Files()[%q] = %+v, want version %s from source 3", file, v, version)
		}
	}
	if files["passwd"] != nil {
		t.Error("an unsafe upstream file name became servable")
	}
}

func TestParseRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":  `<html>captive portal</html>`,
		"truncated": `{"name":"lodash","versions":{`,
		"array":     `[1,2]`,
		"string":    `"x"`,
	} {
		if _, err := Parse([]byte(doc), 0); !errors.Is(err, ErrInvalidPackument) {
			t.Errorf("%s: Parse error = %v, want ErrInvalidPackument", name, err)
		}
	}
	p, err := Parse([]byte(`{"name":"other","versions":{}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckName("lodash"); !errors.Is(err, ErrInvalidPackument) {
		t.Errorf("CheckName accepted a document for another package: %v", err)
	}
}

func TestMerge(t *testing.T) {
	a, _ := Parse([]byte(`{"name":"x","dist-tags":{"latest":"1.0.0"},"versions":{
		"1.0.0":{"name":"x","version":"1.0.0","dist":{"tarball":"https://a/x/-/x-1.0.0.tgz","shasum":"aa"}}},
		"time":{"1.0.0":"A"}}`), 0)
	b, _ := Parse([]byte(`{"name":"x","dist-tags":{"latest":"2.0.0","beta":"3.0.0-b"},"versions":{
		"1.0.0":{"name":"x","version":"1.0.0","dist":{"tarball":"https://b/x/-/x-1.0.0.tgz","shasum":"bb"}},
		"2.0.0":{"name":"x","version":"2.0.0","dist":{"tarball":"https://b/x/-/x-2.0.0.tgz","shasum":"cc"}}},
		"time":{"1.0.0":"B","2.0.0":"B"}}`), 1)
	m := Merge([]*Packument{nil, a, b})
	if len(m.Versions) != 2 || m.Version("1.0.0").Source != 0 || m.Version("2.0.0").Source != 1 {
		t.Fatalf("merged versions wrong: %+v", m.Versions)
	}
	if m.Tag("latest") != "1.0.0" || m.Tag("beta") != "3.0.0-b" {
		t.Errorf("dist-tags: latest %q beta %q", m.Tag("latest"), m.Tag("beta"))
	}
	if len(m.Time) != 2 || string(m.Time[0].Value) != `"A"` {
		t.Errorf("time merged wrong: %+v", m.Time)
	}
	if len(a.Versions) != 1 {
		t.Error("Merge modified its input")
	}
}

// FuzzParse checks that any document Parse accepts renders to valid JSON,
// with no name twice in one object, that parses again to the same
// versions, in both representations.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"scoped.json", "tombstone.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"name":"a\"b","versions":{"1.0.0":{"dist":{"tarball":"x/a-1.0.0.tgz","shasum":"x"}}}}`))
	f.Add([]byte(`{"versions":null,"time":[],"dist-tags":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, 0)
		if err != nil {
			return
		}
		for _, abbr := range []bool{false, true} {
			var buf bytes.Buffer
			p.Render(&buf, testBase, abbr)
			if !json.Valid(buf.Bytes()) {
				t.Fatalf("render(abbr=%v) produced invalid JSON from %q:\n%s", abbr, data, buf.Bytes())
			}
			if path, dup := DuplicateKey(buf.Bytes()); dup {
				t.Fatalf("render(abbr=%v) wrote %s twice from %q:\n%s", abbr, path, data, buf.Bytes())
			}
			if ValidateName(p.Name) != nil {
				continue // the proxy serves only documents that passed CheckName
			}
			q, err := Parse(buf.Bytes(), 0)
			if err != nil {
				t.Fatalf("rendered document does not parse: %v", err)
			}
			if len(q.Versions) != len(p.Versions) {
				t.Fatalf("versions %d after render, %d before", len(q.Versions), len(p.Versions))
			}
		}
	})
}

func TestDigestHashAndString(t *testing.T) {
	for _, algo := range []string{"sha512", "sha384", "sha256", "sha1"} {
		d := Digest{Algo: algo}
		h := d.NewHash()
		h.Write([]byte("x"))
		d.Sum = h.Sum(nil)
		if len(d.Sum) != digestSizes[algo] {
			t.Errorf("%s: NewHash gives %d-byte sums", algo, len(d.Sum))
		}
		back, err := ParseDigest(Dist{Integrity: d.String()})
		if err != nil || back.Algo != algo || string(back.Sum) != string(d.Sum) {
			t.Errorf("%s: String %q does not parse back: %v", algo, d.String(), err)
		}
	}
}

// TestRenderMarkedSplice: a document rendered once for one base and
// spliced for another is byte for byte the document rendered for the
// other, in both representations; a base JSON would escape is not marked.
func TestRenderMarkedSplice(t *testing.T) {
	for _, name := range []string{"scoped", "tombstone"} {
		for _, abbr := range []bool{false, true} {
			p, err := Parse(readTestdata(t, name+".json"), 0)
			if err != nil {
				t.Fatal(err)
			}
			var canon bytes.Buffer
			canon.WriteString("prefix kept out of the offsets")
			start := canon.Len()
			marks, ok := p.RenderMarked(&canon, testBase, abbr)
			if !ok || len(marks) != len(p.Versions) {
				t.Fatalf("%s: %d marks (ok %v) for %d versions", name, len(marks), ok, len(p.Versions))
			}
			for _, other := range []string{"http://a.example:8080/npm/main", "https://b", testBase} {
				var want bytes.Buffer
				p.Render(&want, other, abbr)
				body := canon.Bytes()[start:]
				if got := Splice(body, marks, testBase, other); !bytes.Equal(got, want.Bytes()) {
					t.Errorf("%s abbreviated=%v: spliced for %s:\n%s\nrendered:\n%s", name, abbr, other, got, want.Bytes())
				}
				// Streamed, through small reads and through WriteTo.
				sp := NewSpliced(body, marks, testBase, other)
				if sp.Len() != want.Len() {
					t.Errorf("Len %d, want %d", sp.Len(), want.Len())
				}
				got, err := io.ReadAll(iotest.OneByteReader(sp))
				if err != nil || !bytes.Equal(got, want.Bytes()) {
					t.Errorf("%s abbreviated=%v: read spliced for %s: %v\n%s", name, abbr, other, err, got)
				}
				var w bytes.Buffer
				if _, err := NewSpliced(body, marks, testBase, other).WriteTo(&w); err != nil || !bytes.Equal(w.Bytes(), want.Bytes()) {
					t.Errorf("%s abbreviated=%v: WriteTo spliced for %s: %v\n%s", name, abbr, other, err, w.Bytes())
				}
			}
			if _, ok := p.RenderMarked(new(bytes.Buffer), `http://x/"`, abbr); ok {
				t.Error("a base with a quote was marked")
			}
		}
	}
}

func TestTarballFile(t *testing.T) {
	for _, c := range []struct{ name, version, want string }{
		{"lodash", "4.17.21", "lodash-4.17.21.tgz"},
		{"@types/node", "1.0.0", "node-1.0.0.tgz"},
		{"@s/a", "1.0.0-beta.1", "a-1.0.0-beta.1.tgz"},
	} {
		if got := TarballFile(c.name, c.version); got != c.want {
			t.Errorf("TarballFile(%q, %q) = %q, want %q", c.name, c.version, got, c.want)
		}
	}
}
