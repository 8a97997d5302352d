package feed

import (
	"testing"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// BenchmarkGzipRendered compresses a rendered document as a cold render
// does; B/op shows the compressor's state is reused, not rebuilt.
func BenchmarkGzipRendered(b *testing.B) {
	raw, err := fakeupstream.ReadPackument(fakeupstream.Dir(), "react")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		gzipBytes(raw)
	}
}
