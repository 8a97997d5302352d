package osv

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func rec(id, name string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"affected":[{"package":{"ecosystem":"npm","name":%q},"versions":["1.0.0"]}]}`, id, name)
}

// The zip, the directory and a single file are read alike.
func TestLoadForms(t *testing.T) {
	dir, err := Load(testdataDir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	z, err := Load(testdataZip, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if dir.Stats() != z.Stats() {
		t.Errorf("directory %+v, zip %+v", dir.Stats(), z.Stats())
	}
	for name := range dir.byName {
		if !slices.Equal(ids(dir.Named(name)), ids(z.Named(name))) {
			t.Errorf("%s: directory %v, zip %v", name, ids(dir.Named(name)), ids(z.Named(name)))
		}
	}
	one, err := Load(testdataDir+"/MAL-2025-46974.json", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(one.Affecting("debug", "4.4.2")); !slices.Equal(got, []string{"MAL-2025-46974"}) {
		t.Errorf("single file: %v", got)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.zip"), Limits{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing path: %v", err)
	}
}

// Skipped records are counted by reason and do not fail the load.
func TestLoadCountsSkipped(t *testing.T) {
	files := map[string][]byte{
		"a.json":         rec("GHSA-a", "a"),
		"b.json":         rec("GHSA-b", "b"),
		"c.json":         rec("GHSA-c", "c"),
		"dup.json":       []byte(`{"id":"GHSA-d","id":"GHSA-e","affected":[]}`),
		"withdrawn.json": []byte(`{"id":"GHSA-w","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"w"},"versions":["1.0.0"]}]}`),
		"pypi.json":      []byte(`{"id":"PYSEC-1","affected":[{"package":{"ecosystem":"PyPI","name":"w"},"versions":["1"]}]}`),
		"same-id.json":   rec("GHSA-a", "other"),
		"big.json":       append(rec("GHSA-big", "big"), bytes.Repeat([]byte(" "), 2000)...),
		"README.md":      []byte("not a record"),
	}
	db, err := ReadZip(bytes.NewReader(zipOf(t, files)), int64(len(zipOf(t, files))), Limits{RecordBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Records: 3, Packages: 3, DuplicateKey: 2, Withdrawn: 1, NotNPM: 1, TooLarge: 1}
	got := db.Stats()
	got.Bytes = 0
	if got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if db.Affecting("other", "1.0.0") != nil {
		t.Error("the second record with an id was kept")
	}
}

func TestLoadRefusesBadExports(t *testing.T) {
	many := map[string][]byte{}
	for i := range 5 {
		many[fmt.Sprintf("%d.json", i)] = rec(fmt.Sprintf("GHSA-%d", i), "p")
	}
	mostlyBad := map[string][]byte{"a.json": rec("GHSA-a", "a")}
	for i := range 3 {
		mostlyBad[fmt.Sprintf("bad%d.json", i)] = []byte(`{"id":`)
	}
	// A record padded with spaces: 600 KiB that deflate to a few hundred bytes.
	bomb := map[string][]byte{"bomb.json": append(rec("GHSA-bomb", "b"), bytes.Repeat([]byte(" "), 600<<10)...)}
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		lim   Limits
		want  error
	}{
		{"no records", map[string][]byte{"x.json": []byte(`{"id":"PYSEC-1","affected":[]}`)}, Limits{}, ErrEmpty},
		{"mostly unreadable", mostlyBad, Limits{}, ErrCorrupt},
		{"too many entries", many, Limits{Entries: 4}, ErrTooMany},
		{"too many records", many, Limits{Records: 4}, ErrTooMany},
		{"too many bytes", many, Limits{TotalBytes: 200}, ErrTooBig},
		{"zip bomb", bomb, Limits{}, ErrZipBomb},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := zipOf(t, tc.files)
			if _, err := ReadZip(bytes.NewReader(z), int64(len(z)), tc.lim); !errors.Is(err, tc.want) {
				t.Errorf("ReadZip: %v, want %v", err, tc.want)
			}
			dir := t.TempDir()
			for n, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "zip bomb" {
				return // a directory has no compression to compare with
			}
			if _, err := LoadDir(dir, tc.lim); !errors.Is(err, tc.want) {
				t.Errorf("LoadDir: %v, want %v", err, tc.want)
			}
		})
	}
}

// An entry whose header says it is small and inflates past that fails the
// load: the bytes are counted as they come, not taken from the header.
func TestReadZipCountsInflatedBytes(t *testing.T) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	big := append(rec("GHSA-liar", "liar"), bytes.Repeat([]byte(" "), 5000)...)
	f, err := w.CreateRaw(&zip.FileHeader{Name: "liar.json", Method: zip.Store,
		CompressedSize64: uint64(len(big)), UncompressedSize64: 10, CRC32: 0})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(big)
	g, _ := w.Create("ok.json")
	g.Write(rec("GHSA-ok", "ok"))
	w.Close()
	db, err := ReadZip(bytes.NewReader(buf.Bytes()), int64(buf.Len()), Limits{RecordBytes: 1000})
	if err == nil || db != nil {
		t.Fatalf("ReadZip = %+v, %v; want an error", db.Stats(), err)
	}
}

func TestReadZipNotAZip(t *testing.T) {
	if _, err := ReadZip(strings.NewReader("not a zip"), 9, Limits{}); err == nil {
		t.Fatal("no error")
	}
}
