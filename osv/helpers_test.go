package osv

import (
	"archive/zip"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/osv/npm.zip and the golden files")

// testdataDir is the export of real advisories the e2e tests use too.
const testdataDir = "../testdata/osv/npm"
const testdataZip = "../testdata/osv/npm.zip"

// zipOf builds a zip of files (name → content) the way OSV's export is:
// deflated entries. Entries are in name order with a fixed time, so the
// same files make the same bytes.
func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f, err := w.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dirFiles reads the .json files of dir.
func dirFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no records in %s: %v", dir, err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	return files
}

// testDB is the database of testdata/osv/npm.
func testDB(t testing.TB) *DB {
	t.Helper()
	db, err := LoadDir(testdataDir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func ids(advs []*Advisory) []string {
	out := []string{}
	for _, a := range advs {
		out = append(out, a.ID)
	}
	return out
}

// TestTestdataZip checks that testdata/osv/npm.zip is the zip of
// testdata/osv/npm (go test ./osv -run TestTestdataZip -update rebuilds it).
func TestTestdataZip(t *testing.T) {
	want := zipOf(t, dirFiles(t, testdataDir))
	if *update {
		if err := os.WriteFile(testdataZip, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(testdataZip)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not the zip of %s: run go test ./osv -run TestTestdataZip -update", testdataZip, testdataDir)
	}
}
