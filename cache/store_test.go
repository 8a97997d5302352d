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
