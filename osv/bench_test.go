package osv

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The synthetic export has the shape of OSV's npm/all.zip: mostly MAL-
// records of one name each (a summary, a few hundred bytes of details,
// the malicious-packages origins, half with a versions list, half with
// "introduced 0"), and GHSA records with CVSS vectors, several ranges,
// references and kilobytes of details.
const (
	benchMalicious = 200_000
	benchGHSA      = 20_000
)

var (
	benchOnce sync.Once
	benchZip  []byte
)

func syntheticExport(tb testing.TB) []byte {
	benchOnce.Do(func() {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("npmgate-osv-bench-%d-%d.zip", benchMalicious, benchGHSA))
		if data, err := os.ReadFile(path); err == nil {
			benchZip = data
			return
		}
		var buf bytes.Buffer
		w := zip.NewWriter(&buf)
		add := func(name string, data []byte) {
			f, err := w.Create(name)
			if err != nil {
				tb.Fatal(err)
			}
			f.Write(data)
		}
		for i := range benchMalicious {
			add(fmt.Sprintf("MAL-2025-%d.json", i), malRecord(i))
		}
		for i := range benchGHSA {
			add(fmt.Sprintf("GHSA-%d.json", i), ghsaRecord(i))
		}
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
		benchZip = buf.Bytes()
		_ = os.WriteFile(path, benchZip, 0o644)
	})
	return benchZip
}

func malRecord(i int) []byte {
	name := fmt.Sprintf("evil-pkg-%d", i)
	affected := fmt.Sprintf(`"versions":["1.0.%d","1.0.%d"]`, i%7, i%7+1)
	if i%2 == 1 {
		affected = `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]`
	}
	return fmt.Appendf(nil, `{"modified":"2025-09-12T01:13:34Z","published":"2025-09-08T14:26:51Z","schema_version":"1.5.0",
"id":"MAL-2025-%d","summary":"Malicious code in %s (npm)",
"details":"\n---\n_-= Per source details. Do not edit below this line.=-_\n\n## Source: ossf-package-analysis (%064x)\nThe OpenSSF Package Analysis project identified '%s' @ 1.0.0 (npm) as malicious.\n\nIt is considered malicious because:\n\n- The package communicates with a domain associated with malicious activity.\n- The package executes one or more commands associated with malicious behavior.\n",
"affected":[{"package":{"ecosystem":"npm","name":%q},%s}],
"database_specific":{"malicious-packages-origins":[{"source":"ossf-package-analysis","sha256":"%064x","import_time":"2025-09-09T00:35:48.408037926Z","modified_time":"2025-09-08T17:54:47Z","versions":["1.0.0"]}]}}`,
		i, name, i, name, name, affected, i)
}

func ghsaRecord(i int) []byte {
	name := fmt.Sprintf("lib-%d", i/2) // two advisories per name, as popular packages have
	details := strings.Repeat("The function parses untrusted input with a regular expression that backtracks. ", 25)
	return fmt.Appendf(nil, `{"schema_version":"1.4.0","id":"GHSA-%04d-bench","modified":"2023-07-10T22:57:56Z","published":"2023-06-21T06:30:28Z",
"aliases":["CVE-2023-%d"],"summary":"%s vulnerable to Regular Expression Denial of Service","details":%q,
"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
"affected":[
 {"package":{"ecosystem":"npm","name":%q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"7.0.0"},{"fixed":"7.5.2"}]}]},
 {"package":{"ecosystem":"npm","name":%q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"6.0.0"},{"fixed":"6.3.1"}]}]},
 {"package":{"ecosystem":"npm","name":%q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"5.7.2"}]}]}],
"references":[{"type":"ADVISORY","url":"https://nvd.nist.gov/vuln/detail/CVE-2023-%d"},{"type":"WEB","url":"https://github.com/example/%s/pull/564"},
 {"type":"WEB","url":"https://github.com/example/%s/commit/2f8fd41487acf380194579ecb6f8b1bbfe116be0"},{"type":"PACKAGE","url":"https://github.com/example/%s"}],
"database_specific":{"cwe_ids":["CWE-1333"],"severity":"HIGH","github_reviewed":true,"github_reviewed_at":"2023-06-22T16:52:56Z","nvd_published_at":null}}`,
		i, i, name, details, name, name, name, i, name, name, name)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkLoad reads the synthetic export: time per load, and the heap
// the database holds once loaded (measured around one load, after GC).
func BenchmarkLoad(b *testing.B) {
	z := syntheticExport(b)
	b.SetBytes(int64(len(z)))
	var db *DB
	var held uint64
	for b.Loop() {
		db = nil
		before := heapInUse()
		var err error
		db, err = ReadZip(bytes.NewReader(z), int64(len(z)), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		held = heapInUse() - before
	}
	st := db.Stats()
	b.ReportMetric(float64(st.Records), "records")
	b.ReportMetric(float64(st.Packages), "packages")
	b.ReportMetric(float64(held)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(st.Bytes)/(1<<20), "inflated-MiB")
	b.ReportMetric(float64(len(z))/(1<<20), "zip-MiB")
	runtime.KeepAlive(db)
}

var benchDB struct {
	once sync.Once
	db   *DB
	load time.Duration
}

func loadedBenchDB(b *testing.B) *DB {
	benchDB.once.Do(func() {
		z := syntheticExport(b)
		start := time.Now()
		db, err := ReadZip(bytes.NewReader(z), int64(len(z)), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		benchDB.db, benchDB.load = db, time.Since(start)
	})
	return benchDB.db
}

// BenchmarkAffecting is the render path's question, for a name no record
// names (nearly every call), for a name with advisories and a version
// they do not affect, and for an affected version.
func BenchmarkAffecting(b *testing.B) {
	db := loadedBenchDB(b)
	for _, tc := range []struct{ name, pkg, version string }{
		{"miss-name", "react", "17.0.2"},
		{"miss-version", "lib-42", "7.5.2"},
		{"hit-range", "lib-42", "7.5.1"},
		{"hit-malicious", "evil-pkg-43", "3.0.0"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = db.Affecting(tc.pkg, tc.version)
			}
		})
	}
}
