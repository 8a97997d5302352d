package proxy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// TestReadyzDataDirectory: /readyz fails, saying why, while the data
// directory cannot take a write or has less free space than
// cache.min_free.
func TestReadyzDataDirectory(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	huge := config.Size(1 << 62)
	zero := config.Size(0)
	tests := []struct {
		name    string
		minFree *config.Size // nil: the default
		breakIt func(t *testing.T, data string)
		status  int
		says    string
	}{
		{"default", nil, nil, 200, ""},
		{"min_free above the free space", &huge, nil, 503, "less than cache.min_free"},
		{"min_free 0 disables the check", &zero, nil, 200, ""},
		{"tmp replaced by a file (fails for root too)", nil, func(t *testing.T, data string) {
			tmp := filepath.Join(data, "tmp")
			if err := os.RemoveAll(tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tmp, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, 503, "data directory is not writable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGate(t, up, func(c *config.Config) {
				if tt.minFree != nil {
					c.Cache.MinFree = tt.minFree
				}
			})
			if tt.breakIt != nil {
				tt.breakIt(t, g.data)
			}
			resp, body := g.get("/readyz")
			if resp.StatusCode != tt.status {
				t.Fatalf("/readyz: %d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 200 {
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tt.says) {
				t.Errorf("/readyz body %s, want an error saying %q", body, tt.says)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
