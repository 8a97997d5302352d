package warm

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/proxy/npm"
)

var update = flag.Bool("update", false, "rewrite the golden want.txt files from the parsers' output")

// The e2e app's lockfile, made by npm; the yarn1, yarn4 and pnpm9 lockfiles
// in testdata were made by yarn 1.22.22, yarn 4.18.1 and pnpm 10.34.8
// installing the same app (testdata/e2e/app/package.json) against the fake
// upstream. The other lockfiles are small hand-written ones covering what
// the app does not have: workspaces, links, git, files, bundled
// dependencies, patches, older lockfile versions.
const e2eLock = "../testdata/e2e/app/package-lock.json"

var goldens = []struct {
	lockfile string
	golden   string
	format   Format
}{
	{e2eLock, "testdata/npm-v3.want.txt", FormatNpm},
	{"testdata/npm-v2/package-lock.json", "testdata/npm-v2/want.txt", FormatNpm},
	{"testdata/npm-v1/package-lock.json", "testdata/npm-v1/want.txt", FormatNpm},
	{"testdata/yarn1/yarn.lock", "testdata/yarn1/want.txt", FormatYarnClassic},
	{"testdata/yarn1-edge/yarn.lock", "testdata/yarn1-edge/want.txt", FormatYarnClassic},
	{"testdata/yarn4/yarn.lock", "testdata/yarn4/want.txt", FormatYarnBerry},
	{"testdata/yarn4-edge/yarn.lock", "testdata/yarn4-edge/want.txt", FormatYarnBerry},
	{"testdata/pnpm9/pnpm-lock.yaml", "testdata/pnpm9/want.txt", FormatPnpm},
	{"testdata/pnpm9-edge/pnpm-lock.yaml", "testdata/pnpm9-edge/want.txt", FormatPnpm},
	{"testdata/pnpm6/pnpm-lock.yaml", "testdata/pnpm6/want.txt", FormatPnpm},
	{"testdata/pnpm5/pnpm-lock.yaml", "testdata/pnpm5/want.txt", FormatPnpm},
}

// render is a lockfile's parse as golden text.
func render(lf *Lockfile) string {
	var b strings.Builder
	b.WriteString("# format " + string(lf.Format) + "\n")
	for _, p := range lf.Packages {
		b.WriteString(strings.TrimSpace(p.String()+" "+p.Integrity) + "\n")
	}
	b.WriteString("# skipped\n")
	for _, s := range lf.Skipped {
		b.WriteString(s + "\n")
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.lockfile, func(t *testing.T) {
			lf, err := ReadFile(g.lockfile)
			if err != nil {
				t.Fatal(err)
			}
			if lf.Format != g.format {
				t.Errorf("format %s, want %s", lf.Format, g.format)
			}
			got := render(lf)
			if *update {
				if err := os.WriteFile(g.golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(g.golden)
			if err != nil {
				t.Fatalf("%v (run go test ./warm -run TestGolden -update, and review the diff)", err)
			}
			if got != string(want) {
				t.Errorf("parse of %s differs from %s (go test ./warm -run TestGolden -update rewrites it):\n--- got ---\n%s--- want ---\n%s", g.lockfile, g.golden, got, want)
			}
			checkPackages(t, lf)
		})
	}
}

// checkPackages asserts what every parse guarantees: valid names and
// versions, no duplicates, sorted.
func checkPackages(t testing.TB, lf *Lockfile) {
	t.Helper()
	seen := map[string]bool{}
	for i, p := range lf.Packages {
		if err := npm.ValidateName(p.Name); err != nil {
			t.Fatalf("package %d: %q: %v", i, p.Name, err)
		}
		if err := npm.ValidateVersionOrTag(p.Version); err != nil {
			t.Fatalf("package %d: %q: %v", i, p.Version, err)
		}
		if seen[p.String()] {
			t.Fatalf("duplicate %s", p)
		}
		seen[p.String()] = true
		if i > 0 {
			q := lf.Packages[i-1]
			if q.Name > p.Name || q.Name == p.Name && q.Version > p.Version {
				t.Fatalf("not sorted: %s before %s", q, p)
			}
		}
	}
}

// Every client installed the same tree of the e2e app: the four lockfiles
// must name the same 38 packages, and those that record tarball integrity
// the same hashes.
func TestSameTreeEveryClient(t *testing.T) {
	ref, err := ReadFile(e2eLock)
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.Packages) != 38 {
		t.Fatalf("%s: %d packages, want the 38 its README describes", e2eLock, len(ref.Packages))
	}
	want := map[string]string{}
	for _, p := range ref.Packages {
		want[p.String()] = p.Integrity
		if !strings.HasPrefix(p.Integrity, "sha512-") {
			t.Errorf("%s: integrity %q", p, p.Integrity)
		}
	}
	for _, file := range []string{"testdata/yarn1/yarn.lock", "testdata/yarn4/yarn.lock", "testdata/pnpm9/pnpm-lock.yaml"} {
		lf, err := ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(lf.Packages) != len(want) {
			t.Errorf("%s: %d packages, want %d", file, len(lf.Packages), len(want))
		}
		for _, p := range lf.Packages {
			integrity, ok := want[p.String()]
			switch {
			case !ok:
				t.Errorf("%s: %s is not in the npm lockfile", file, p)
			case lf.Format == FormatYarnBerry && p.Integrity != "":
				t.Errorf("%s: %s: integrity %q from a berry checksum", file, p, p.Integrity)
			case lf.Format != FormatYarnBerry && p.Integrity != integrity:
				t.Errorf("%s: %s: integrity %q, npm has %q", file, p, p.Integrity, integrity)
			}
		}
	}
}

func TestDetect(t *testing.T) {
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	npmLock, y1, y4, pn := read(e2eLock), read("testdata/yarn1/yarn.lock"), read("testdata/yarn4/yarn.lock"), read("testdata/pnpm9/pnpm-lock.yaml")
	for _, tc := range []struct {
		name string
		data []byte
		want Format
	}{
		{"package-lock.json", npmLock, FormatNpm},
		{"npm-shrinkwrap.json", npmLock, FormatNpm},
		{"yarn.lock", y1, FormatYarnClassic},
		{"yarn.lock", y4, FormatYarnBerry},
		{"pnpm-lock.yaml", pn, FormatPnpm},
		// Saved under another name: guessed from the content.
		{"lock.json", npmLock, FormatNpm},
		{"yarn-classic.lock", y1, FormatYarnClassic},
		{"berry.lock", y4, FormatYarnBerry},
		{"pnpm.yaml", pn, FormatPnpm},
	} {
		lf, err := Parse(tc.name, tc.data)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if lf.Format != tc.want || len(lf.Packages) != 38 {
			t.Errorf("%s: %s with %d packages, want %s with 38", tc.name, lf.Format, len(lf.Packages), tc.want)
		}
	}
	if _, err := Parse("Gemfile.lock", []byte("GEM\n  remote: https://rubygems.org/\n")); err == nil {
		t.Error("Gemfile.lock: no error")
	}
	if _, err := ReadFile("testdata/missing/package-lock.json"); err == nil {
		t.Error("missing file: no error")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"package-lock.json", "{"},
		{"package-lock.json", `{"packages": []}`},
		{"package-lock.json", `{"name": "x"}`},
		{"package-lock.json", `{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": 1}}}`},
		{"yarn.lock", "__metadata:\n  version: 8\n\"a@npm:1\": [\n"},
		{"yarn.lock", "hello"},
		{"pnpm-lock.yaml", "packages:\n  ms@2.1.3:\n    resolution: {integrity: x}\n"},
		{"pnpm-lock.yaml", "lockfileVersion: '9.0'\npackages: [1, 2]\n"},
	} {
		if lf, err := Parse(tc.name, []byte(tc.data)); err == nil {
			t.Errorf("%s %q: no error, got %+v", tc.name, tc.data, lf)
		}
	}
}

// Windows checkouts turn yarn.lock's newlines into CRLF.
func TestYarnClassicCRLF(t *testing.T) {
	lf := must(ReadFile("testdata/yarn1-edge/yarn.lock"))
	data, err := os.ReadFile("testdata/yarn1-edge/yarn.lock")
	if err != nil {
		t.Fatal(err)
	}
	crlf := must(Parse("yarn.lock", bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))))
	if render(crlf) != render(lf) {
		t.Errorf("CRLF parse differs:\n%s\nvs\n%s", render(crlf), render(lf))
	}
}

// An entry whose name npm could never request is skipped, not returned.
func TestInvalidNamesSkipped(t *testing.T) {
	lf := must(Parse("package-lock.json", []byte(`{"lockfileVersion": 3, "packages": {
		"node_modules/../../etc": {"version": "1.0.0"},
		"node_modules/ok": {"version": "1.0.0 || evil"},
		"node_modules/fine": {"version": "1.0.0"}}}`)))
	if len(lf.Packages) != 1 || lf.Packages[0].Name != "fine" || len(lf.Skipped) != 2 {
		t.Errorf("got %s", render(lf))
	}
}

func must(lf *Lockfile, err error) *Lockfile {
	if err != nil {
		panic(err)
	}
	return lf
}

// fuzzSeeds adds every lockfile of testdata whose name is name, and the
// extra seeds.
func fuzzSeeds(f *testing.F, name string, extra ...string) {
	paths, _ := filepath.Glob("testdata/*/" + name)
	if name == "package-lock.json" {
		paths = append(paths, e2eLock)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// fuzzCheck parses data and asserts the guarantees of a successful parse.
func fuzzCheck(t *testing.T, name string, data []byte) {
	lf, err := Parse(name, data)
	if err != nil {
		return
	}
	checkPackages(t, lf)
	for _, p := range lf.Packages {
		if strings.ContainsAny(p.Integrity, "\n\r\t") || strings.Contains(p.Integrity, "  ") {
			t.Fatalf("%s: integrity %q not normalised", p, p.Integrity)
		}
	}
}

func FuzzPackageLock(f *testing.F) {
	fuzzSeeds(f, "package-lock.json",
		`{"lockfileVersion":3,"packages":{"":{},"node_modules/a/node_modules/@s/b":{"version":"1.0.0"}}}`,
		`{"lockfileVersion":1,"dependencies":{"a":{"version":"npm:@s/b@2.0.0","dependencies":{"c":{"version":"1.0.0"}}}}}`,
		`{"packages":{"node_modules/":{"version":"1.0.0"},"node_modules/x":{"name":"@s/","version":"1"}}}`)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzCheck(t, "package-lock.json", data) })
}

func FuzzYarnLock(f *testing.F) {
	fuzzSeeds(f, "yarn.lock",
		"a@^1, \"a@~1.2\":\n  version \"1.2.3\"\n  resolved \"https://r/a/-/a-1.2.3.tgz#0123456789abcdef0123456789abcdef01234567\"\n",
		"\"@s/a@npm:@t/b@1\":\n  version: \"1.0.0\"\n",
		"__metadata:\n  version: 8\n\"a@npm:1\":\n  resolution: \"a@npm:b@npm:1.0.0\"\n",
		"\"a\\\"b@1\":\n  version \"1\"\n")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzCheck(t, "yarn.lock", data) })
}

func FuzzPnpmLock(f *testing.F) {
	fuzzSeeds(f, "pnpm-lock.yaml",
		"lockfileVersion: '6.0'\npackages:\n  /@s/a@1.0.0(b@2.0.0):\n    resolution: {integrity: sha512-x}\n",
		"lockfileVersion: 5.4\npackages:\n  /a/1.0.0_b@2.0.0:\n    resolution: {integrity: sha512-x}\n",
		"lockfileVersion: '9.0'\npackages:\n  a@https://x/a/-/a-1.tgz:\n    resolution: {tarball: https://x/a/-/a-1.tgz}\n    version: 1.0.0\n")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzCheck(t, "pnpm-lock.yaml", data) })
}
