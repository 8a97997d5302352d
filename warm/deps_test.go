package warm

import (
	"context"
	"go/build"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// TestWarmDoesNotImportProxy: warm speaks HTTP to npmgate; the command
// hands it the server to run in-process (Job.NewServer), so warm does not
// depend on the server's package.
func TestWarmDoesNotImportProxy(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pkg.Imports, "github.com/npmgate/npmgate/proxy") {
		t.Errorf("warm imports proxy: %q", pkg.Imports)
	}
}

// TestUserAgent: requests say they come from npmgate warm and which
// version, "dev" unless told.
func TestUserAgent(t *testing.T) {
	for _, tt := range []struct{ version, want string }{
		{"", "npmgate-warm/dev"},
		{"1.2.3", "npmgate-warm/1.2.3"},
	} {
		var mu sync.Mutex
		var agents []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			agents = append(agents, r.UserAgent())
			mu.Unlock()
			http.NotFound(w, r)
		}))
		_, err := Run(context.Background(), srv.URL, []Package{{Name: "ms", Version: "2.1.3"}}, Options{Version: tt.version})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(agents) == 0 {
			t.Fatalf("version %q: no request", tt.version)
		}
		for _, a := range agents {
			if a != tt.want {
				t.Errorf("version %q: User-Agent %q, want %q", tt.version, a, tt.want)
			}
		}
	}
}
