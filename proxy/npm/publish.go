package npm

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Errors of ParsePublish and ValidateTag. Their messages are what the
// client reads; errors.Is tells them apart.
var (
	// ErrInvalidPublish: a publish body or a dist-tag npm would not
	// accept either.
	ErrInvalidPublish = errors.New("invalid publish")
	// ErrTarballTooLarge: the attached tarball is over the limit.
	ErrTarballTooLarge = errors.New("tarball too large")
)

// publishError carries the client's message and the kind of refusal.
type publishError struct {
	kind error
	msg  string
}

func (e *publishError) Error() string { return e.msg }
func (e *publishError) Unwrap() error { return e.kind }

func invalid(format string, args ...any) error {
	return &publishError{kind: ErrInvalidPublish, msg: fmt.Sprintf(format, args...)}
}

// Attachment is a file a publish body carries, base64 in Data.
type Attachment struct {
	ContentType string `json:"content_type"`
	Data        string `json:"data"`
	Length      int64  `json:"length"`
}

// PublishRequest is what ParsePublish reads of a publish body.
type PublishRequest struct {
	Name        string
	DistTags    map[string]string
	Versions    map[string]json.RawMessage
	Attachments map[string]Attachment
}

// PublishLimits bound what a publish may carry.
type PublishLimits struct {
	// MaxSize is the largest tarball, in bytes (publish.max_size).
	MaxSize int64
	// MaxInflate bounds the tar stream inside the tarball.
	MaxInflate int64
}

// Publish is a validated publish: one version and its tarball.
type Publish struct {
	Name, Version string
	SemVer        *semver.Version
	Tarball       []byte
	// Sum512 is the tarball's SHA-512, Integrity the same as npm writes it.
	Sum512    []byte
	Integrity string
	// Doc is the version document as it will be served, made from the
	// tarball and the server's own dist; the caller adds _npmUser.
	Doc    map[string]json.RawMessage
	Readme string
}

// ParsePublish validates a publish body sent to urlName's document: the
// name, the one version and its one tarball attachment, the dist-tags,
// the claimed integrity, and the tarball's package.json, from which the
// fields npm acts on are taken. It changes nothing; its errors are
// ErrInvalidPublish or ErrTarballTooLarge, with the client's message.
func ParsePublish(req PublishRequest, lim PublishLimits) (*Publish, error) {
	pub, raw, err := parseEnvelope(req, lim)
	if err != nil {
		return nil, err
	}
	v, err := parseVersion(pub, raw)
	if err != nil {
		return nil, err
	}
	sum512 := sha512.Sum512(pub.Tarball)
	sum1 := sha1.Sum(pub.Tarball)
	pub.Sum512 = sum512[:]
	pub.Integrity = "sha512-" + base64.StdEncoding.EncodeToString(sum512[:])
	if err := checkClaims(v, sum512[:], sum1[:]); err != nil {
		return nil, err
	}
	pt, err := readManifest(pub.Tarball, lim.MaxInflate)
	if err != nil {
		return nil, invalid("the tarball cannot be read: %v", err)
	}
	manifest := pt.manifest
	if JSONString(manifest["name"]) != pub.Name || !sameVersion(JSONString(manifest["version"]), pub.SemVer) {
		return nil, invalid("the tarball's package.json is %s@%s, not %s@%s", JSONString(manifest["name"]), JSONString(manifest["version"]), pub.Name, pub.Version)
	}
	if err := takeTarballFacts(v, pt); err != nil {
		return nil, err
	}
	// dist is the server's own, made from the bytes it stores.
	v["dist"] = MustJSON(map[string]any{
		"integrity":    pub.Integrity,
		"shasum":       hex.EncodeToString(sum1[:]),
		"tarball":      "https://npmgate.invalid/" + pub.Name + "/-/" + TarballFile(pub.Name, pub.Version),
		"fileCount":    pt.fileCount,
		"unpackedSize": pt.unpackedSize,
	})
	v["_id"] = MustJSON(pub.Name + "@" + pub.Version)
	pub.Readme = JSONString(v["readme"])
	delete(v, "readme")
	delete(v, "_attachments")
	pub.Doc = v
	return pub, nil
}

// parseEnvelope checks the body's shape: a valid new name, one version,
// one tarball attachment named for it, dist-tags that point at it, and a
// tarball within the limit.
func parseEnvelope(req PublishRequest, lim PublishLimits) (*Publish, json.RawMessage, error) {
	name := req.Name
	if err := ValidateNewName(name); err != nil {
		return nil, nil, err
	}
	if len(req.Versions) != 1 {
		return nil, nil, invalid("a publish carries exactly one version, not %d", len(req.Versions))
	}
	tgz := 0
	for key := range req.Attachments {
		if strings.HasSuffix(key, ".tgz") {
			tgz++
		}
	}
	if tgz != 1 {
		return nil, nil, invalid("a publish carries exactly one tarball attachment, not %d", tgz)
	}
	var version string
	var raw json.RawMessage
	for version, raw = range req.Versions {
	}
	if len(version) > 256 {
		return nil, nil, invalid("version too long")
	}
	sv, err := semver.StrictNewVersion(version)
	if err != nil {
		return nil, nil, invalid("%q is not a valid semver version: %v", version, err)
	}
	att, ok := req.Attachments[name+"-"+version+".tgz"]
	if !ok {
		att, ok = req.Attachments[TarballFile(name, version)]
	}
	if !ok {
		return nil, nil, invalid("the attachment must be named %s-%s.tgz", name, version)
	}
	for tag := range req.DistTags {
		if err := ValidateTag(tag); err != nil {
			return nil, nil, err
		}
		if req.DistTags[tag] != version {
			return nil, nil, invalid("dist-tag %q points at %s, not at the version being published (%s)", tag, req.DistTags[tag], version)
		}
	}
	data, err := decodeAttachment(att, lim.MaxSize)
	if err != nil {
		return nil, nil, err
	}
	return &Publish{Name: name, Version: version, SemVer: sv, Tarball: data}, raw, nil
}

// decodeAttachment decodes a tarball attachment within maxSize bytes.
func decodeAttachment(att Attachment, maxSize int64) ([]byte, error) {
	tooLarge := &publishError{kind: ErrTarballTooLarge, msg: fmt.Sprintf("the tarball is larger than this registry's limit of %d bytes (publish.max_size)", maxSize)}
	if int64(base64.StdEncoding.DecodedLen(len(att.Data))) > maxSize+3 {
		return nil, tooLarge
	}
	data, err := base64.StdEncoding.DecodeString(att.Data)
	if err != nil {
		return nil, invalid("the attachment is not valid base64")
	}
	if int64(len(data)) > maxSize {
		return nil, tooLarge
	}
	if att.Length != 0 && att.Length != int64(len(data)) {
		return nil, invalid("the attachment is %d bytes, its length says %d", len(data), att.Length)
	}
	return data, nil
}

// parseVersion reads the version object and checks its name and version.
func parseVersion(pub *Publish, raw json.RawMessage) (map[string]json.RawMessage, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalid("version %s is not a JSON object", pub.Version)
	}
	if n := JSONString(v["name"]); n != pub.Name {
		return nil, invalid("versions[%s].name is %q, not %q", pub.Version, n, pub.Name)
	}
	if vv := JSONString(v["version"]); vv != pub.Version {
		return nil, invalid("versions[%s].version is %q", pub.Version, vv)
	}
	return v, nil
}

// checkClaims compares the client's dist claims with the tarball. The
// client's dist is read for its claims only, and never kept: signatures
// or attestations npmgate did not make must not be served.
func checkClaims(v map[string]json.RawMessage, sum512, sum1 []byte) error {
	var sent struct {
		Integrity json.RawMessage `json:"integrity"`
		Shasum    json.RawMessage `json:"shasum"`
	}
	_ = json.Unmarshal(v["dist"], &sent)
	if claimed := JSONString(sent.Integrity); claimed != "" {
		d, err := ParseDigest(Dist{Integrity: claimed})
		if err != nil || d.Algo != "sha512" || !bytes.Equal(d.Sum, sum512) {
			return invalid("integrity mismatch: dist.integrity does not match the attached tarball")
		}
	}
	if claimed := JSONString(sent.Shasum); claimed != "" && claimed != hex.EncodeToString(sum1) {
		return invalid("integrity mismatch: dist.shasum does not match the attached tarball")
	}
	return nil
}

// takeTarballFacts sets what runs, what is installed and where it may be
// installed from the tarball itself, so the document can never hide an
// install script, a dependency or a bin the bytes carry (manifest
// confusion).
func takeTarballFacts(v map[string]json.RawMessage, pt *packageTarball) error {
	manifest := pt.manifest
	sentBin := v["bin"]
	for _, k := range tarballFields {
		if m, ok := manifest[k]; ok {
			v[k] = m
		} else {
			delete(v, k)
		}
	}
	if _, ok := manifest["bin"]; !ok && sentBin != nil && hasMember(manifest["directories"], "bin") {
		// npm lists the files of directories.bin as bin when it packs,
		// from the same files: the document's list is the one npm links.
		v["bin"] = sentBin
	}
	installScript, gyp, err := installFacts(pt)
	if err != nil {
		return invalid("the tarball's package.json: %v", err)
	}
	if gyp {
		// npm runs "node-gyp rebuild" for it at install, and says so in
		// the document it publishes.
		var scripts map[string]json.RawMessage
		_ = json.Unmarshal(manifest["scripts"], &scripts)
		if scripts == nil { // absent or null
			scripts = map[string]json.RawMessage{}
		}
		scripts["install"] = MustJSON("node-gyp rebuild")
		v["scripts"], v["gypfile"] = MustJSON(scripts), MustJSON(true)
	} else {
		delete(v, "gypfile")
	}
	if installScript {
		v["hasInstallScript"] = MustJSON(true)
	} else {
		delete(v, "hasInstallScript")
	}
	v["_hasShrinkwrap"] = MustJSON(pt.shrinkwrap)
	return nil
}

// sameVersion compares the tarball's package.json version with the one
// published the way npm does: npm cleans the document's version
// ("1.0.0+build.7", "v1.0.0" and "=1.0.0" become "1.0.0") but the tarball
// keeps what the author wrote.
func sameVersion(manifest string, published *semver.Version) bool {
	mv, err := semver.NewVersion(strings.TrimLeft(strings.TrimSpace(manifest), "=v"))
	return err == nil && mv.Equal(published) && mv.Prerelease() == published.Prerelease()
}

// ValidateTag refuses tag names npm itself refuses: empty, or a valid
// semver range (a tag "1.x" would shadow the range).
func ValidateTag(tag string) error {
	if tag == "" || len(tag) > 128 || strings.ContainsAny(tag, "/\\ %") {
		return invalid("invalid dist-tag %q", tag)
	}
	if _, err := semver.NewConstraint(tag); err == nil {
		return invalid("dist-tag %q is a semver range; tags must not be", tag)
	}
	return nil
}

// JSONString is raw as a string, or "" when it is not one.
func JSONString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// MustJSON encodes v as npm documents are written: no HTML escaping, no
// trailing newline. It panics on a value that cannot be encoded.
func MustJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}
