package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestEnvironmentAndPublicURL configures npmgate only through NPMGATE_*
// variables, with a public URL: packuments served at / and at /npm/npm/
// point their tarballs under that URL.
func TestEnvironmentAndPublicURL(t *testing.T) {
	const public = "http://registry.example.test:8080/mirror"
	up := startUpstream(t, "")
	data := t.TempDir()
	g := startGateWith(t, data, []string{
		"NPMGATE_LISTEN=127.0.0.1:0",
		"NPMGATE_DATA=" + data,
		"NPMGATE_UPSTREAM=" + up.URL,
		"NPMGATE_PUBLIC_URL=" + public + "/",
	})
	for _, c := range []struct{ path, accept, want string }{
		{"chalk", "application/json", public + "/chalk/-/chalk-4.1.2.tgz"},
		{"chalk", "application/vnd.npm.install-v1+json", public + "/chalk/-/chalk-4.1.2.tgz"},
		{"npm/npm/chalk", "application/vnd.npm.install-v1+json", public + "/npm/npm/chalk/-/chalk-4.1.2.tgz"},
		{"@isaacs%2fcliui", "application/json", public + "/@isaacs/cliui/-/cliui-8.0.2.tgz"},
	} {
		r := get(t, g.URL+c.path, "Accept", c.accept)
		if r.status != 200 {
			t.Errorf("GET /%s: %d %s", c.path, r.status, r.body)
			continue
		}
		var doc struct {
			Versions map[string]struct {
				Dist struct {
					Tarball string `json:"tarball"`
				} `json:"dist"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Errorf("GET /%s: %v", c.path, err)
			continue
		}
		var got []string
		for _, v := range doc.Versions {
			if v.Dist.Tarball == c.want {
				got = append(got, v.Dist.Tarball)
			}
		}
		if len(got) != 1 {
			t.Errorf("GET /%s (%s): no version has dist.tarball %s", c.path, c.accept, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "snapshots")); err != nil {
		t.Errorf("NPMGATE_DATA was not used: %v", err)
	}
}
