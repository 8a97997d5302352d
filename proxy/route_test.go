package proxy

import (
	"strings"
	"testing"

	"github.com/npmgate/npmgate/proxy/npm"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want Route
		bad  bool
	}{
		{path: "/lodash", want: Route{Kind: KindPackument, Name: "lodash"}},
		{path: "/lodash/", want: Route{Kind: KindPackument, Name: "lodash"}},
		{path: "/@types%2fnode", want: Route{Kind: KindPackument, Name: "@types/node"}},
		{path: "/@types%2Fnode", want: Route{Kind: KindPackument, Name: "@types/node"}},
		{path: "/@types/node", want: Route{Kind: KindPackument, Name: "@types/node"}},
		{path: "/%40types%2fnode", want: Route{Kind: KindPackument, Name: "@types/node"}},
		{path: "/JSONStream", want: Route{Kind: KindPackument, Name: "JSONStream"}},
		{path: "/lodash/4.17.21", want: Route{Kind: KindVersion, Name: "lodash", Version: "4.17.21"}},
		{path: "/lodash/latest", want: Route{Kind: KindVersion, Name: "lodash", Version: "latest"}},
		{path: "/@s/p/1.0.0+build.5", want: Route{Kind: KindVersion, Name: "@s/p", Version: "1.0.0+build.5"}},
		{path: "/@s%2fp/1.0.0", want: Route{Kind: KindVersion, Name: "@s/p", Version: "1.0.0"}},
		{path: "/lodash/-/lodash-4.17.21.tgz", want: Route{Kind: KindTarball, Name: "lodash", File: "lodash-4.17.21.tgz"}},
		{path: "/@s/p/-/p-1.0.0.tgz", want: Route{Kind: KindTarball, Name: "@s/p", File: "p-1.0.0.tgz"}},
		{path: "/@s%2fp/-/p-1.0.0.tgz", want: Route{Kind: KindTarball, Name: "@s/p", File: "p-1.0.0.tgz"}},
		{path: "/p/-/p-1.0.0+build.5.tgz", want: Route{Kind: KindTarball, Name: "p", File: "p-1.0.0+build.5.tgz"}},
		{path: "/p/-/p-1.0.0%2Bbuild.5.tgz", want: Route{Kind: KindTarball, Name: "p", File: "p-1.0.0+build.5.tgz"}},
		{path: "/-/ping", want: Route{Kind: KindPing, API: "/ping"}},
		{path: "/@s%2fp/-rev/3-abc", want: Route{Kind: KindRev, Name: "@s/p", Rev: "3-abc"}},
		{path: "/@s/p/-/p-1.0.0.tgz/-rev/4-def", want: Route{Kind: KindTarballRev, Name: "@s/p", File: "p-1.0.0.tgz", Rev: "4-def"}},
		{path: "/p/-rev/..", bad: true},
		{path: "/p/-rev/a%2fb", bad: true},
		{path: "/-/whoami", want: Route{Kind: KindAPI, API: "/whoami"}},
		{path: "/", want: Route{Kind: KindNotFound}},
		{path: "/a/b/c/d", want: Route{Kind: KindNotFound, Name: "a"}},

		// The security catalogue's path cases (A1-A16): all refused.
		{path: "/..%2f..%2fetc%2fpasswd", bad: true},
		{path: "/%2F%2F%2F%2F..%2F..%2F..%2Fetc%2Fpasswd", bad: true},
		{path: "/%252e%252e%252fCANARY", bad: true},
		{path: "/@scope%2f..%2f..%2fCANARY", bad: true},
		{path: "/@..%2fx", bad: true},
		{path: "/foo%5c..%5c..%5cCANARY", bad: true},
		{path: "/foo%00.json", bad: true},
		{path: "/.bin", bad: true},
		{path: "/_private", bad: true},
		{path: "/node_modules", bad: true},
		{path: "/favicon.ico", bad: true},
		{path: "/__proto__", bad: true},
		{path: "/" + strings.Repeat("a", 215), bad: true},
		{path: "/l%D0%BEdash", bad: true},
		{path: "/lodash%E2%80%8B", bad: true},
		{path: "/lodash%E2%80%AE", bad: true},
		{path: "/%ED%A0%80abc", bad: true},
		{path: "/lodash/-/lodash-4.17.21.tgz%2f..%2f..%2fCANARY", bad: true},
		{path: "/lodash/-/..%2f..%2fCANARY.tgz", bad: true},
		{path: "/lodash/-/../x.tgz", bad: true},
		{path: "/lodash/..", bad: true},
		{path: "/lodash%2f1.0.0", bad: true},
		{path: "/@scope", bad: true},
		{path: "/lodash/-/x.txt", bad: true},
		{path: "/lodash/%zz", bad: true},
		{path: "lodash", bad: true},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.path)
		if tt.bad {
			if err == nil {
				t.Errorf("ParsePath(%q) = %+v, want an error", tt.path, got)
			} else if statusOf(err) != 400 {
				t.Errorf("ParsePath(%q) error %v maps to %d, want 400", tt.path, err, statusOf(err))
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tt.path, got, err, tt.want)
		}
	}
	// 214 characters is the longest valid name.
	long := strings.Repeat("a", 214)
	if r, err := ParsePath("/" + long); err != nil || r.Name != long {
		t.Errorf("214-character name refused: %v", err)
	}
}

// FuzzParsePath: whatever the path, a route that parses names a valid
// package and a file or version that can never act as a path.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/lodash", "/@s%2fp/-/p-1.0.0.tgz", "/..%2f..", "/@a/b/1.0.0+x", "/-/ping", "/%252e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParsePath(p)
		if err != nil {
			return
		}
		switch r.Kind {
		case KindPackument, KindVersion, KindTarball:
			if npm.ValidateName(r.Name) != nil {
				t.Fatalf("%q: invalid name %q accepted", p, r.Name)
			}
		}
		for _, s := range []string{r.File, r.Version} {
			if strings.ContainsAny(s, "/\\\x00") || s == ".." {
				t.Fatalf("%q: unsafe segment %q", p, s)
			}
		}
		if r.Kind == KindTarball && npm.ValidateTarballFile(r.File) != nil {
			t.Fatalf("%q: bad file %q", p, r.File)
		}
	})
}

func TestCheckHost(t *testing.T) {
	for h, ok := range map[string]bool{
		"npm.example.com":           true,
		"NPM.Example.com:8080":      true,
		"127.0.0.1:4873":            true,
		"[::1]:4873":                true,
		"[::1]":                     true,
		"good.example@evil.example": false,
		"good.example/evil":         false,
		"good.example, evil.com":    false,
		"good.example:99999":        false,
		"good.example:0":            false,
		"good.example:":             false,
		"":                          false,
		"evil\r\nX-Injected: 1":     false,
		"[notip]:80":                false,
	} {
		got, err := checkHost(h)
		if (err == nil) != ok {
			t.Errorf("checkHost(%q) = %q, %v; want ok=%v", h, got, err, ok)
		}
	}
}
