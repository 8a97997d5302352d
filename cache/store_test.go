package cache_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/cache/storetest"
)

func TestDiskConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) cache.Store {
		d, err := cache.OpenDisk(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	})
}

// The asynchronous decorator is a Store like the others.
func TestAsyncStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) cache.Store {
		d, err := cache.OpenDisk(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		a := cache.NewAsyncStore(d, 1<<30, slog.New(slog.NewTextHandler(io.Discard, nil)))
		t.Cleanup(func() { a.Flush(); d.Close() })
		return a
	})
}
