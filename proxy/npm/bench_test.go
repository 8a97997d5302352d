package npm

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// largePackument is the recorded typescript document (about 10 MB), the
// largest in the fixture.
func largePackument(b *testing.B) []byte {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "registry", "packuments", "typescript.json.gz"))
	if err != nil {
		b.Skip("recorded typescript packument missing:", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkColdRender is the miss path: parse an upstream document and
// render both representations. alloc/doc is the bytes allocated per
// render divided by the document's size; since the renders keep what they
// allocate, it bounds the peak heap the render adds.
func BenchmarkColdRender(b *testing.B) {
	data := largePackument(b)
	for _, abbr := range []bool{false, true} {
		name := "full"
		if abbr {
			name = "abbreviated"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				p, err := Parse(data, 0)
				if err != nil {
					b.Fatal(err)
				}
				var buf bytes.Buffer
				buf.Grow(p.SizeHint("http://127.0.0.1:4873"))
				p.Render(&buf, "http://127.0.0.1:4873", abbr)
			}
			runtime.ReadMemStats(&after)
			perOp := float64(after.TotalAlloc-before.TotalAlloc) / float64(b.N)
			b.ReportMetric(perOp/float64(len(data)), "alloc/doc")
		})
	}
}

// BenchmarkParse is the parse alone, the part of a cold render that checks
// the upstream document (valid JSON, no duplicate key) before anything of
// it is kept.
func BenchmarkParse(b *testing.B) {
	data := largePackument(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDuplicateKey is the duplicate check alone, the part of Parse
// that refuses a document with two readings.
func BenchmarkDuplicateKey(b *testing.B) {
	data := largePackument(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if path, dup := DuplicateKey(data); dup {
			b.Fatal(path)
		}
	}
}
