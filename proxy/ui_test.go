package proxy

import (
	"strings"
	"testing"

	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// browserAccept is what Chromium and Firefox send for a page.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

// Client Accept headers: npm's (the corgi), yarn's and pnpm's, curl's.
var clientAccepts = []string{
	"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
	"application/json",
	"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", // pnpm
	"*/*",
	"",
}

func TestUIRoutesBrowsersOnly(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{Block: []string{"ms@<2.1.0"}}))
	for _, path := range []string{"/", "/ms", "/@types%2fnode", "/npm/main/", "/npm/main/ms", "/-/ui/", "/-/ui/package/main/ms"} {
		resp, body := g.get(path, "Accept", browserAccept)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("browser GET %s: %d %s %.200s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	for _, accept := range clientAccepts {
		for _, path := range []string{"/ms", "/npm/main/ms"} {
			resp, body := g.get(path, "Accept", accept)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") {
				t.Errorf("client (Accept %q) GET %s: %d %s %.100s", accept, path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
	}
	// A tarball opened from the page is the tarball, whatever the Accept.
	resp, _ := g.get("/ms/-/ms-2.1.3.tgz", "Accept", browserAccept)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") == "text/html; charset=utf-8" {
		t.Errorf("tarball from a browser: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
