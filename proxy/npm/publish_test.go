package npm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// testTarball packs one package.json as npm does.
func testTarball(t *testing.T, manifest string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "package/package.json", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg})
	tw.Write([]byte(manifest))
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestParsePublish: a good body is accepted with the server's own dist;
// each bad one is refused with its sentinel and the message npm prints,
// and nothing in between needs a server.
func TestParsePublish(t *testing.T) {
	tgz := testTarball(t, `{"name":"pkg","version":"1.0.0","scripts":{"postinstall":"x"}}`)
	good := func() PublishRequest {
		return PublishRequest{
			Name:        "pkg",
			DistTags:    map[string]string{"latest": "1.0.0"},
			Versions:    map[string]json.RawMessage{"1.0.0": json.RawMessage(`{"name":"pkg","version":"1.0.0","readme":"hi"}`)},
			Attachments: map[string]Attachment{"pkg-1.0.0.tgz": {Data: base64.StdEncoding.EncodeToString(tgz)}},
		}
	}
	lim := PublishLimits{MaxSize: 1 << 20, MaxInflate: 1 << 20}
	pub, err := ParsePublish(good(), lim)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Name != "pkg" || pub.Version != "1.0.0" || pub.Readme != "hi" || !bytes.Equal(pub.Tarball, tgz) ||
		!strings.HasPrefix(pub.Integrity, "sha512-") || string(pub.Doc["hasInstallScript"]) != "true" || pub.Doc["readme"] != nil {
		t.Errorf("accepted publish: %+v", pub)
	}
	for _, tc := range []struct {
		name string
		edit func(*PublishRequest)
		lim  PublishLimits
		want error
		msg  string
	}{
		{"bad name", func(r *PublishRequest) { r.Name = "Bad Name" }, lim, ErrInvalidName, ""},
		{"two versions", func(r *PublishRequest) { r.Versions["1.0.1"] = r.Versions["1.0.0"] }, lim, ErrInvalidPublish, "exactly one version, not 2"},
		{"no attachment", func(r *PublishRequest) { r.Attachments = nil }, lim, ErrInvalidPublish, "exactly one tarball attachment, not 0"},
		{"bad tag", func(r *PublishRequest) { r.DistTags = map[string]string{"1.x": "1.0.0"} }, lim, ErrInvalidPublish, `dist-tag "1.x" is a semver range`},
		{"tag elsewhere", func(r *PublishRequest) { r.DistTags = map[string]string{"next": "2.0.0"} }, lim, ErrInvalidPublish, `dist-tag "next" points at 2.0.0`},
		{"too large", func(*PublishRequest) {}, PublishLimits{MaxSize: 10, MaxInflate: 1 << 20}, ErrTarballTooLarge, "limit of 10 bytes (publish.max_size)"},
		{"wrong integrity", func(r *PublishRequest) {
			r.Versions["1.0.0"] = json.RawMessage(`{"name":"pkg","version":"1.0.0","dist":{"shasum":"00"}}`)
		}, lim, ErrInvalidPublish, "dist.shasum does not match"},
		{"other manifest", func(r *PublishRequest) {
			r.Attachments["pkg-1.0.0.tgz"] = Attachment{Data: base64.StdEncoding.EncodeToString(testTarball(t, `{"name":"other","version":"1.0.0"}`))}
		}, lim, ErrInvalidPublish, "package.json is other@1.0.0, not pkg@1.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.edit(&r)
			_, err := ParsePublish(r, tc.lim)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %v saying %q", err, tc.want, tc.msg)
			}
		})
	}
}
