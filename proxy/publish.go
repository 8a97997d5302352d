package proxy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/proxy/npm"
)

// publishBody is what npm, yarn and pnpm PUT to /{name}: a publish when
// it carries a tarball attachment, else a metadata change (deprecate,
// owner, star, and the document PUT of unpublish).
type publishBody struct {
	ID          string                     `json:"_id"`
	Name        string                     `json:"name"`
	Rev         string                     `json:"_rev"`
	DistTags    map[string]string          `json:"dist-tags"`
	Versions    map[string]json.RawMessage `json:"versions"`
	Attachments map[string]attachment      `json:"_attachments"`
	Maintainers []maintainer               `json:"maintainers"`
	// Users is what npm star and unstar send.
	Users map[string]bool `json:"users"`
}

type attachment struct {
	ContentType string `json:"content_type"`
	Data        string `json:"data"`
	Length      int64  `json:"length"`
}

// errPublish is a publish refused for what it contains (400).
type publishError struct {
	status int
	msg    string
}

func (e *publishError) Error() string { return e.msg }

func refuse(status int, format string, args ...any) error {
	return &publishError{status: status, msg: fmt.Sprintf(format, args...)}
}

// serveWrite dispatches the writes of a package.
func (s *Server) serveWrite(ctx *fasthttp.RequestCtx, f *feed, prefix string, r Route, p *auth.Principal) {
	if err := f.access.Load().Check(p, auth.Publish); err != nil {
		// npm star is a PUT of the document too, and needs only read
		// rights: a small body without publish rights may be a star.
		if !(ctx.IsPut() && r.Kind == KindPackument && p != nil && len(ctx.PostBody()) <= maxStarBody) {
			s.failAuth(ctx, err)
			return
		}
		var body publishBody
		if json.Unmarshal(ctx.PostBody(), &body) != nil || !body.isStar() {
			s.failAuth(ctx, err)
			return
		}
		if err := s.star(f, r, &body, p); err != nil {
			s.failWrite(ctx, err)
			return
		}
		writeJSONValue(ctx, fasthttp.StatusOK, map[string]bool{"ok": true})
		return
	}
	var err error
	switch {
	case ctx.IsPut() && (r.Kind == KindPackument || r.Kind == KindRev):
		err = s.put(ctx, f, r, p)
	case ctx.IsDelete() && r.Kind == KindRev:
		err = f.updateAs(p, r.Name, r.Rev, func(d *localDoc) error {
			for v := range d.Packument.Versions {
				d.unpublish(v)
			}
			return nil
		})
		if err == nil {
			s.log.Info("unpublished package", "feed", f.name, "package", r.Name, "user", p.Name)
		}
	case ctx.IsDelete() && r.Kind == KindTarballRev:
		// npm removed the version with the document PUT before; a version
		// still present is removed here, as its tarball goes.
		err = f.updateAs(p, r.Name, "", func(d *localDoc) error {
			for v := range d.Packument.Versions {
				if npm.TarballFile(r.Name, v) == r.File {
					d.unpublish(v)
				}
			}
			return nil
		})
	default:
		ctx.Response.Header.Set("Allow", "GET, HEAD, PUT, DELETE")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, fmt.Sprintf("%s is not supported here", ctx.Method()))
		return
	}
	if err != nil {
		s.failWrite(ctx, err)
		return
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) failWrite(ctx *fasthttp.RequestCtx, err error) {
	var pe *publishError
	if errors.As(err, &pe) {
		writeError(ctx, pe.status, pe.msg)
		return
	}
	s.fail(ctx, err)
}

func (s *Server) put(ctx *fasthttp.RequestCtx, f *feed, r Route, p *auth.Principal) error {
	// One reading of the body: Go's decoder keeps the last of two members
	// with one name, where another reader may keep the first.
	if raw := ctx.PostBody(); json.Valid(raw) {
		if path, dup := npm.DuplicateKey(raw); dup {
			return refuse(400, "the request body has the key %s twice in one object; send each key once", path)
		}
	}
	var body publishBody
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		return refuse(400, "the request body is not a JSON package document: %v", err)
	}
	name := body.Name
	if name == "" && len(body.Attachments) == 0 {
		name = body.ID // npm owner and npm star send _id and _rev, no name
	}
	if name != r.Name || (body.ID != "" && body.ID != r.Name) {
		return refuse(400, "the name in the document (%q) is not the name in the URL (%q)", body.Name, r.Name)
	}
	for key, a := range body.Attachments {
		if strings.HasSuffix(key, ".tgz") && a.Data != "" {
			if r.Kind == KindRev {
				return refuse(400, "a publish is a PUT to /%s, not to a revision", r.Name)
			}
			return s.publish(ctx, f, &body, p)
		}
	}
	if r.Kind == KindPackument && body.isStar() {
		return s.star(f, r, &body, p)
	}
	rev := r.Rev
	return f.updateAs(p, r.Name, rev, func(d *localDoc) error {
		if err := s.checkNewMaintainers(d, body.Maintainers); err != nil {
			return err
		}
		return d.applyMetadata(&body, r.Kind == KindRev)
	})
}

// publish validates and stores a new version.
func (s *Server) publish(ctx *fasthttp.RequestCtx, f *feed, body *publishBody, p *auth.Principal) error {
	name := body.Name
	if err := npm.ValidateNewName(name); err != nil {
		return refuse(400, "%v", err)
	}
	if len(body.Versions) != 1 {
		return refuse(400, "a publish carries exactly one version, not %d", len(body.Versions))
	}
	tgz := 0
	for key := range body.Attachments {
		if strings.HasSuffix(key, ".tgz") {
			tgz++
		}
	}
	if tgz != 1 {
		return refuse(400, "a publish carries exactly one tarball attachment, not %d", tgz)
	}
	var version string
	var raw json.RawMessage
	for version, raw = range body.Versions {
	}
	if len(version) > 256 {
		return refuse(400, "version too long")
	}
	sv, err := semver.StrictNewVersion(version)
	if err != nil {
		return refuse(400, "%q is not a valid semver version: %v", version, err)
	}
	file := npm.TarballFile(name, version)
	att, ok := body.Attachments[name+"-"+version+".tgz"]
	if !ok {
		att, ok = body.Attachments[file]
	}
	if !ok {
		return refuse(400, "the attachment must be named %s-%s.tgz", name, version)
	}
	for tag := range body.DistTags {
		if err := validateTag(tag); err != nil {
			return err
		}
		if body.DistTags[tag] != version {
			return refuse(400, "dist-tag %q points at %s, not at the version being published (%s)", tag, body.DistTags[tag], version)
		}
	}
	maxSize := int64(s.cfg.Publish.MaxSize)
	if int64(base64.StdEncoding.DecodedLen(len(att.Data))) > maxSize+3 {
		return refuse(413, "the tarball is larger than this registry's limit of %d bytes (publish.max_size)", maxSize)
	}
	data, err := base64.StdEncoding.DecodeString(att.Data)
	if err != nil {
		return refuse(400, "the attachment is not valid base64")
	}
	if int64(len(data)) > maxSize {
		return refuse(413, "the tarball is larger than this registry's limit of %d bytes (publish.max_size)", maxSize)
	}
	if att.Length != 0 && att.Length != int64(len(data)) {
		return refuse(400, "the attachment is %d bytes, its length says %d", len(data), att.Length)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		return refuse(400, "version %s is not a JSON object", version)
	}
	if n := jsonString(v["name"]); n != name {
		return refuse(400, "versions[%s].name is %q, not %q", version, n, name)
	}
	if vv := jsonString(v["version"]); vv != version {
		return refuse(400, "versions[%s].version is %q", version, vv)
	}
	sum512 := sha512.Sum512(data)
	sum1 := sha1.Sum(data)
	integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum512[:])
	// The client's dist is read for its claims only, and never kept:
	// signatures or attestations npmgate did not make must not be served.
	var sent struct {
		Integrity json.RawMessage `json:"integrity"`
		Shasum    json.RawMessage `json:"shasum"`
	}
	_ = json.Unmarshal(v["dist"], &sent)
	if claimed := jsonString(sent.Integrity); claimed != "" {
		d, err := npm.ParseDigest(npm.Dist{Integrity: claimed})
		if err != nil || d.Algo != "sha512" || !bytes.Equal(d.Sum, sum512[:]) {
			return refuse(400, "integrity mismatch: dist.integrity does not match the attached tarball")
		}
	}
	if claimed := jsonString(sent.Shasum); claimed != "" && claimed != hex.EncodeToString(sum1[:]) {
		return refuse(400, "integrity mismatch: dist.shasum does not match the attached tarball")
	}
	pt, err := readManifest(data)
	if err != nil {
		return refuse(400, "the tarball cannot be read: %v", err)
	}
	manifest := pt.manifest
	if jsonString(manifest["name"]) != name || !sameVersion(jsonString(manifest["version"]), sv) {
		return refuse(400, "the tarball's package.json is %s@%s, not %s@%s", jsonString(manifest["name"]), jsonString(manifest["version"]), name, version)
	}
	// What runs, what is installed and where it may be installed come
	// from the tarball itself, so the document can never hide an install
	// script, a dependency or a bin the bytes carry (manifest confusion).
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
		return refuse(400, "the tarball's package.json: %v", err)
	}
	if gyp {
		// npm runs "node-gyp rebuild" for it at install, and says so in
		// the document it publishes.
		var scripts map[string]json.RawMessage
		_ = json.Unmarshal(manifest["scripts"], &scripts)
		if scripts == nil { // absent or null
			scripts = map[string]json.RawMessage{}
		}
		scripts["install"] = mustJSON("node-gyp rebuild")
		v["scripts"], v["gypfile"] = mustJSON(scripts), mustJSON(true)
	} else {
		delete(v, "gypfile")
	}
	if installScript {
		v["hasInstallScript"] = mustJSON(true)
	} else {
		delete(v, "hasInstallScript")
	}
	v["_hasShrinkwrap"] = mustJSON(pt.shrinkwrap)

	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	// dist is the server's own, made from the bytes it stores.
	v["dist"] = mustJSON(map[string]any{
		"integrity":    integrity,
		"shasum":       hex.EncodeToString(sum1[:]),
		"tarball":      "https://npmgate.invalid/" + name + "/-/" + file,
		"fileCount":    pt.fileCount,
		"unpackedSize": pt.unpackedSize,
	})
	v["_id"] = mustJSON(name + "@" + version)
	v["_npmUser"] = mustJSON(maintainer{Name: p.Name})
	readme := jsonString(v["readme"])
	delete(v, "readme")
	delete(v, "_attachments")
	versionJSON := mustJSON(v)

	existing, err := f.readLocal(name)
	if err != nil {
		return err
	}
	if existing == nil || existing.Packument == nil {
		// A name already local is not asked about again: it is the
		// feed's, and its maintainers decide.
		if err := s.checkConnectors(f, name, p); err != nil {
			return err
		}
	}
	err = f.updateLocal(name, func(d *localDoc) (*localDoc, error) {
		if d != nil && d.Packument != nil {
			if err := f.mayChange(p, d); err != nil {
				return nil, err
			}
		}
		if d == nil {
			d = &localDoc{Published: map[string]string{}}
		}
		if d.Packument == nil {
			d.Packument = &localPackument{ID: name, Name: name, DistTags: map[string]string{}, Time: map[string]string{"created": now}}
		}
		if _, taken := d.Published[version]; taken {
			return nil, refuse(409, "cannot publish over the previously published version %s@%s", name, version)
		}
		for existing := range d.Published {
			if ev, err := semver.NewVersion(existing); err == nil && ev.Equal(sv) && ev.Metadata() == sv.Metadata() {
				return nil, refuse(409, "cannot publish over the previously published version %s@%s", name, existing)
			}
		}
		// The tarball first: a crash now leaves an unreferenced file, never a
		// document that points at missing bytes.
		if err := s.storeTarball(data, sum512[:]); err != nil {
			return nil, err
		}
		lp := d.Packument
		if lp.Versions == nil {
			lp.Versions = map[string]json.RawMessage{}
		}
		if len(lp.Maintainers) == 0 {
			lp.Maintainers = []maintainer{{Name: p.Name}}
		}
		lp.Versions[version] = withMaintainers(versionJSON, lp.Maintainers)
		lp.Time[version], lp.Time["modified"] = now, now
		if _, ok := lp.Time["created"]; !ok {
			lp.Time["created"] = now
		}
		tags := body.DistTags
		if len(tags) == 0 {
			tags = map[string]string{"latest": version}
		}
		maps.Copy(lp.DistTags, tags)
		if lp.DistTags["latest"] == "" || lp.Versions[lp.DistTags["latest"]] == nil {
			lp.DistTags["latest"] = version
		}
		if desc := jsonString(v["description"]); desc != "" && tags["latest"] == version {
			lp.Description = desc
		}
		if readme != "" && tags["latest"] == version || lp.Readme == "" {
			lp.Readme = readme
		}
		lp.Rev = nextRev(lp.Rev)
		d.Published[version] = integrity
		return d, nil
	})
	if err != nil {
		return err
	}
	s.log.Info("published", "feed", f.name, "package", name, "version", version, "user", p.Name, "bytes", len(data))
	return nil
}

func (s *Server) storeTarball(data, sum []byte) error {
	key := cache.TarballKey("sha512", hex.EncodeToString(sum))
	if s.shared != nil {
		// Shared first: once the document names a version, every
		// replica must find its bytes.
		if err := s.shared.Put(detached, key, bytes.NewReader(data), int64(len(data))); err != nil {
			return fmt.Errorf("storing the tarball in the shared store: %w", err)
		}
	}
	if _, err := s.disk.Stat(detached, key); err == nil {
		return nil // the same bytes are already stored
	}
	w, err := s.disk.Create(key)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// packageTarball is what a publish learns from its tarball: the one
// package.json an installer extracts, and what npm would compute from the
// files themselves.
type packageTarball struct {
	manifest     map[string]json.RawMessage
	fileCount    int
	unpackedSize int64
	// bindingGyp: a binding.gyp at the package root, for which npm runs
	// "node-gyp rebuild" when the package has no install script of its own.
	bindingGyp bool
	// shrinkwrap: an npm-shrinkwrap.json at the root, which npm installs
	// from.
	shrinkwrap bool
}

// Bounds on reading a tarball, so that a gzip bomb or a tarball of empty
// entries costs little. npm's largest packages have tens of thousands of
// files.
const (
	maxTarEntries  = 100_000
	maxManifestLen = 4 << 20
)

// maxInflate bounds the tar stream inside a tarball (a variable for tests).
var maxInflate int64 = 512 << 20

var errInflate = errors.New("the tarball inflates to more than the limit")

// readManifest reads a package tarball without extracting anything: its
// package.json, refused when more than one entry would be extracted to it
// (npmgate would vet one and npm install the other), and its file facts.
func readManifest(tgz []byte) (*packageTarball, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, errors.New("not gzip")
	}
	tr := tar.NewReader(&inflateLimit{r: zr, left: maxInflate})
	pt := &packageTarball{}
	var pkgJSON []byte
	candidates := 0
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errInflate) {
			return nil, fmt.Errorf("the tarball inflates to more than %d MiB", maxInflate>>20)
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive: %v", err)
		}
		if entries >= maxTarEntries {
			return nil, fmt.Errorf("more than %d entries", maxTarEntries)
		}
		regular := h.Typeflag == tar.TypeReg // the reader reports TypeRegA as TypeReg
		if regular || h.Typeflag == tar.TypeCont {
			pt.fileCount++
			pt.unpackedSize += h.Size
		}
		if landsAt(h.Name, "binding.gyp") {
			pt.bindingGyp = true
		}
		if landsAt(h.Name, "npm-shrinkwrap.json") {
			pt.shrinkwrap = true
		}
		if !landsAt(h.Name, "package.json") {
			continue
		}
		candidates++
		if candidates > 1 {
			return nil, fmt.Errorf("more than one entry is extracted to package.json (%q is another); an installer would use a file npmgate did not check", h.Name)
		}
		if !regular {
			return nil, fmt.Errorf("%s is not a regular file", h.Name)
		}
		if _, rest, _ := strings.Cut(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/"); rest != "package.json" {
			return nil, fmt.Errorf("%q is not named package.json in the package directory", h.Name)
		}
		if h.Size > maxManifestLen {
			return nil, errors.New("package.json is larger than 4 MiB")
		}
		if pkgJSON, err = io.ReadAll(io.LimitReader(tr, maxManifestLen)); err != nil {
			return nil, err
		}
	}
	if pkgJSON == nil {
		return nil, errors.New("no package.json in the first directory of the tarball")
	}
	if !json.Valid(pkgJSON) {
		return nil, errors.New("package.json is not valid JSON")
	}
	// Its members are served as they are: one reading only.
	if p, dup := npm.DuplicateKey(pkgJSON); dup {
		return nil, fmt.Errorf("package.json has the key %s twice", p)
	}
	if err := json.Unmarshal(pkgJSON, &pt.manifest); err != nil {
		return nil, fmt.Errorf("package.json: %v", err)
	}
	return pt, nil
}

// landsAt reports whether an installer could extract the tar entry name to
// the file want at the package root. npm (node-tar with strip: 1) drops the
// first path component whatever it is; other tools resolve "." and ".."
// first. Both readings count, as do Windows separators and the file
// systems of macOS and Windows, which ignore case (and, on Windows,
// trailing dots and spaces).
func landsAt(name, want string) bool {
	name = strings.ReplaceAll(name, `\`, "/")
	_, stripped, _ := strings.Cut(name, "/")
	if sameRootFile(path.Clean("/"+stripped), want) {
		return true
	}
	_, resolved, _ := strings.Cut(strings.TrimPrefix(path.Clean("/"+name), "/"), "/")
	return sameRootFile("/"+resolved, want)
}

func sameRootFile(p, want string) bool {
	return len(p) > 1 && strings.EqualFold(strings.TrimRight(p[1:], ". "), want)
}

// inflateLimit fails a read past left bytes, so that a tarball cut at the
// limit is an error rather than an archive that seems to end there.
type inflateLimit struct {
	r    io.Reader
	left int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errInflate
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// tarballFields are the version fields a publish takes from the tarball's
// package.json, never from the document: what npm runs, installs, links
// and checks the platform against.
var tarballFields = []string{
	"scripts", "dependencies", "optionalDependencies", "peerDependencies",
	"peerDependenciesMeta", "bundleDependencies", "bundledDependencies", "acceptDependencies",
	"bin", "directories", "man", "engines", "os", "cpu", "libc", "license",
}

// hasMember reports whether raw is an object with the member name.
func hasMember(raw json.RawMessage, name string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	_, ok := m[name]
	return ok
}

// installFacts says whether npm runs an install script for the package
// (hasInstallScript) and whether that is node-gyp's, for a binding.gyp
// and no install or preinstall script of the package's own (gypfile).
func installFacts(pt *packageTarball) (installScript, gyp bool, err error) {
	var scripts map[string]json.RawMessage
	if raw, ok := pt.manifest["scripts"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &scripts); err != nil {
			return false, false, errors.New("scripts is not an object")
		}
	}
	_, install := scripts["install"]
	_, preinstall := scripts["preinstall"]
	_, postinstall := scripts["postinstall"]
	gyp = pt.bindingGyp && !install && !preinstall && string(pt.manifest["gypfile"]) != "false"
	return install || preinstall || postinstall || gyp, gyp, nil
}

// update applies a change to a local package under its lock. rev, when
// given, must be the current revision (optimistic concurrency).
func (f *feed) update(name, rev string, change func(*localDoc) error) error {
	return f.updateLocal(name, func(d *localDoc) (*localDoc, error) {
		if d == nil || d.Packument == nil {
			return nil, refuse(404, "%s is not a package published to feed %q; only local packages can be changed", name, f.name)
		}
		if rev != "" && rev != d.Packument.Rev {
			return nil, refuse(409, "document revision %s is not the current one (%s); fetch it again", rev, d.Packument.Rev)
		}
		if err := change(d); err != nil {
			return nil, err
		}
		d.Packument.Rev = nextRev(d.Packument.Rev)
		d.Packument.Time["modified"] = time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
		return d, nil
	})
}

// unpublish removes a version; its place in Published stays, so it can
// never be published again.
func (d *localDoc) unpublish(v string) {
	lp := d.Packument
	delete(lp.Versions, v)
	for tag, target := range lp.DistTags {
		if target == v {
			delete(lp.DistTags, tag)
		}
	}
	if _, ok := lp.DistTags["latest"]; !ok {
		if best := highest(slices.Collect(maps.Keys(lp.Versions))); best != "" {
			lp.DistTags["latest"] = best
		}
	}
}

func highest(versions []string) string {
	var best *semver.Version
	bestRaw := ""
	for _, v := range versions {
		sv, err := semver.NewVersion(v)
		if err != nil {
			continue
		}
		if best == nil || (sv.Prerelease() == "") && (best.Prerelease() != "" || sv.GreaterThan(best)) ||
			(sv.Prerelease() != "") == (best.Prerelease() != "") && sv.GreaterThan(best) {
			best, bestRaw = sv, v
		}
	}
	return bestRaw
}

// applyMetadata takes from a document PUT only what a client may change:
// deprecation messages, dist-tags and maintainers. With a revision (the
// unpublish flow), versions missing from the body are unpublished. dist
// and integrity are never taken from the client.
func (d *localDoc) applyMetadata(body *publishBody, replace bool) error {
	lp := d.Packument
	if body.Versions != nil {
		for v, stored := range lp.Versions {
			sent, ok := body.Versions[v]
			if !ok {
				if replace {
					d.unpublish(v)
				}
				continue
			}
			var fields struct {
				Deprecated *string `json:"deprecated"`
			}
			json.Unmarshal(sent, &fields)
			var m map[string]json.RawMessage
			if err := json.Unmarshal(stored, &m); err != nil {
				return err
			}
			if fields.Deprecated != nil && *fields.Deprecated != "" {
				m["deprecated"] = mustJSON(*fields.Deprecated)
			} else {
				delete(m, "deprecated")
			}
			lp.Versions[v] = mustJSON(m)
		}
	}
	if body.DistTags != nil {
		tags := map[string]string{}
		for tag, v := range body.DistTags {
			if err := validateTag(tag); err != nil {
				return err
			}
			if _, ok := lp.Versions[v]; ok {
				tags[tag] = v
			}
		}
		if _, ok := tags["latest"]; !ok {
			if best := highest(slices.Collect(maps.Keys(lp.Versions))); best != "" {
				tags["latest"] = best
			}
		}
		lp.DistTags = tags
	}
	if body.Maintainers != nil {
		var ms []maintainer
		for _, m := range body.Maintainers {
			if m.Name != "" && !slices.ContainsFunc(ms, func(o maintainer) bool { return o.Name == m.Name }) {
				ms = append(ms, maintainer{Name: m.Name})
			}
		}
		if len(ms) == 0 {
			return refuse(400, "a package keeps at least one maintainer")
		}
		lp.Maintainers = ms
	}
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

// validateTag refuses tag names npm itself refuses: empty, or a valid
// semver range (a tag "1.x" would shadow the range).
func validateTag(tag string) error {
	if tag == "" || len(tag) > 128 || strings.ContainsAny(tag, "/\\ %") {
		return refuse(400, "invalid dist-tag %q", tag)
	}
	if _, err := semver.NewConstraint(tag); err == nil {
		return refuse(400, "dist-tag %q is a semver range; tags must not be", tag)
	}
	return nil
}

func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func mustJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// serveDistTags answers /-/package/{name}/dist-tags[/{tag}].
func (s *Server) serveDistTags(ctx *fasthttp.RequestCtx, f *feed, rest string, p *auth.Principal) {
	escaped, tail, _ := strings.Cut(rest, "/dist-tags")
	r, err := ParsePath("/" + escaped)
	if err != nil || r.Kind != KindPackument || (tail != "" && !strings.HasPrefix(tail, "/")) {
		writeError(ctx, fasthttp.StatusBadRequest, "expected /-/package/{name}/dist-tags[/{tag}]")
		return
	}
	tag, err := unescapeSegment(strings.TrimPrefix(tail, "/"))
	if tail == "" {
		tag, err = "", nil
	}
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "bad tag")
		return
	}
	if ctx.IsGet() && tag == "" {
		if err := f.access.Load().Check(p, auth.Read); err != nil {
			s.failAuth(ctx, err)
			return
		}
		doc, err := f.parsed(r.Name)
		if err != nil {
			s.fail(ctx, err)
			return
		}
		tags := map[string]string{}
		for _, t := range doc.DistTags {
			tags[t.Name] = t.Version
		}
		writeJSONValue(ctx, fasthttp.StatusOK, tags)
		return
	}
	if err := f.access.Load().Check(p, auth.Publish); err != nil {
		s.failAuth(ctx, err)
		return
	}
	switch {
	case ctx.IsPut() && tag != "":
		var version string
		if err := json.Unmarshal(ctx.PostBody(), &version); err != nil {
			version = strings.Trim(string(ctx.PostBody()), "\" \n")
		}
		err = validateTag(tag)
		if err == nil {
			err = f.updateAs(p, r.Name, "", func(d *localDoc) error {
				if _, ok := d.Packument.Versions[version]; !ok {
					return refuse(404, "%s@%s does not exist", r.Name, version)
				}
				d.Packument.DistTags[tag] = version
				return nil
			})
		}
	case ctx.IsDelete() && tag != "":
		if tag == "latest" {
			writeError(ctx, fasthttp.StatusBadRequest, "the latest tag cannot be removed")
			return
		}
		err = f.updateAs(p, r.Name, "", func(d *localDoc) error {
			if _, ok := d.Packument.DistTags[tag]; !ok {
				return refuse(404, "%s has no dist-tag %q", r.Name, tag)
			}
			delete(d.Packument.DistTags, tag)
			return nil
		})
	default:
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "use GET, PUT or DELETE")
		return
	}
	if err != nil {
		s.failWrite(ctx, err)
		return
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]bool{"ok": true})
}
