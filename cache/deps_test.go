package cache_test

import (
	"go/build"
	"slices"
	"testing"
)

// TestCacheDoesNotImportConfig: the tiers take their own options (as
// S3Options); the caller converts the configuration, so that cache does
// not depend on the file's format.
func TestCacheDoesNotImportConfig(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pkg.Imports, "github.com/npmgate/npmgate/config") {
		t.Errorf("cache imports config: %q", pkg.Imports)
	}
}
