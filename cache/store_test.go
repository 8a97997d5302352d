package cache_test

import (
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

// TestAsyncStoreConformance: an AsyncStore over the disk is a Store like
// any other; its writes land in the background between the suite's
// steps.
func TestAsyncStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) cache.Store {
		d, err := cache.OpenDisk(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		a := cache.NewAsyncStore(d, cache.AsyncOptions{})
		t.Cleanup(func() {
			a.Close()
			d.Close()
		})
		return a
	})
}
