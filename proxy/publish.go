package proxy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
)

// maxInflate bounds the tar stream inside a published tarball (a
// variable for tests).
var maxInflate int64 = 512 << 20

// serveWrite dispatches the writes of a package.
func (s *Server) serveWrite(ctx *fasthttp.RequestCtx, f *feed.Feed, prefix string, r Route, p *auth.Principal) {
	if err := f.Access.Load().Check(p, auth.Publish); err != nil {
		// npm star is a PUT of the document too, and needs only read
		// rights: a small body without publish rights may be a star.
		if !(ctx.IsPut() && r.Kind == KindPackument && p != nil && len(ctx.PostBody()) <= maxStarBody) {
			s.fail(ctx, authFailure(err))
			return
		}
		var body feed.WriteBody
		if json.Unmarshal(ctx.PostBody(), &body) != nil || !body.IsStar() {
			s.fail(ctx, authFailure(err))
			return
		}
		if err := s.star(s.rctx(ctx), f, r, &body, p); err != nil {
			s.fail(ctx, err)
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
		err = f.UpdateAs(s.rctx(ctx), p, r.Name, r.Rev, func(d *feed.LocalDoc) error {
			for v := range d.Packument.Versions {
				d.Unpublish(v)
			}
			return nil
		})
		if err == nil {
			s.log.Info("unpublished package", "feed", f.Name, "package", r.Name, "user", p.Name)
		}
	case ctx.IsDelete() && r.Kind == KindTarballRev:
		// npm removed the version with the document PUT before; a version
		// still present is removed here, as its tarball goes.
		err = f.UpdateAs(s.rctx(ctx), p, r.Name, "", func(d *feed.LocalDoc) error {
			for v := range d.Packument.Versions {
				if npm.TarballFile(r.Name, v) == r.File {
					d.Unpublish(v)
				}
			}
			return nil
		})
	default:
		ctx.Response.Header.Set("Allow", "GET, HEAD, PUT, DELETE")
		s.fail(ctx, refused(errMethod, fmt.Sprintf("%s is not supported here", ctx.Method())))
		return
	}
	if err != nil {
		s.fail(ctx, err)
		return
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) put(ctx *fasthttp.RequestCtx, f *feed.Feed, r Route, p *auth.Principal) error {
	// One reading of the body: Go's decoder keeps the last of two members
	// with one name, where another reader may keep the first.
	if raw := ctx.PostBody(); json.Valid(raw) {
		if path, dup := npm.DuplicateKey(raw); dup {
			return feed.Refuse(npm.ErrInvalidPublish, "the request body has the key %s twice in one object; send each key once", path)
		}
	}
	var body feed.WriteBody
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		return feed.Refuse(npm.ErrInvalidPublish, "the request body is not a JSON package document: %v", err)
	}
	name := body.Name
	if name == "" && len(body.Attachments) == 0 {
		name = body.ID // npm owner and npm star send _id and _rev, no name
	}
	if name != r.Name || (body.ID != "" && body.ID != r.Name) {
		return feed.Refuse(npm.ErrInvalidPublish, "the name in the document (%q) is not the name in the URL (%q)", body.Name, r.Name)
	}
	for key, a := range body.Attachments {
		if strings.HasSuffix(key, ".tgz") && a.Data != "" {
			if r.Kind == KindRev {
				return feed.Refuse(npm.ErrInvalidPublish, "a publish is a PUT to /%s, not to a revision", r.Name)
			}
			return s.publish(ctx, f, &body, p)
		}
	}
	if r.Kind == KindPackument && body.IsStar() {
		return s.star(s.rctx(ctx), f, r, &body, p)
	}
	rev := r.Rev
	return f.UpdateAs(s.rctx(ctx), p, r.Name, rev, func(d *feed.LocalDoc) error {
		if err := f.CheckNewMaintainers(d, body.Maintainers); err != nil {
			return err
		}
		return d.ApplyMetadata(&body, r.Kind == KindRev)
	})
}

// publish reads a new version from the body (the edge's part: the
// request's limits) and has the feed store it.
func (s *Server) publish(ctx *fasthttp.RequestCtx, f *feed.Feed, body *feed.WriteBody, p *auth.Principal) error {
	pub, err := npm.ParsePublish(npm.PublishRequest{
		Name: body.Name, DistTags: body.DistTags, Versions: body.Versions, Attachments: body.Attachments,
	}, npm.PublishLimits{MaxSize: int64(s.cfg.Publish.MaxSize), MaxInflate: maxInflate})
	if err != nil {
		return err
	}
	return f.Publish(s.rctx(ctx), pub, body.DistTags, p)
}

// serveDistTags answers /-/package/{name}/dist-tags[/{tag}].
func (s *Server) serveDistTags(ctx *fasthttp.RequestCtx, f *feed.Feed, rest string, p *auth.Principal) {
	escaped, tail, _ := strings.Cut(rest, "/dist-tags")
	r, err := ParsePath("/" + escaped)
	if err != nil || r.Kind != KindPackument || (tail != "" && !strings.HasPrefix(tail, "/")) {
		s.fail(ctx, refused(errBadRequest, "expected /-/package/{name}/dist-tags[/{tag}]"))
		return
	}
	tag, err := unescapeSegment(strings.TrimPrefix(tail, "/"))
	if tail == "" {
		tag, err = "", nil
	}
	if err != nil {
		s.fail(ctx, refused(errBadRequest, "bad tag"))
		return
	}
	if ctx.IsGet() && tag == "" {
		if err := f.Access.Load().Check(p, auth.Read); err != nil {
			s.fail(ctx, authFailure(err))
			return
		}
		doc, err := f.ParsedDoc(s.rctx(ctx), r.Name, nil)
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
	if err := f.Access.Load().Check(p, auth.Publish); err != nil {
		s.fail(ctx, authFailure(err))
		return
	}
	if err := s.writeLimits(ctx, f, p, "change the tags of", r.Name); err != nil {
		s.fail(ctx, authFailure(err))
		return
	}
	switch {
	case ctx.IsPut() && tag != "":
		var version string
		if err := json.Unmarshal(ctx.PostBody(), &version); err != nil {
			version = strings.Trim(string(ctx.PostBody()), "\" \n")
		}
		err = npm.ValidateTag(tag)
		if err == nil {
			err = f.SetDistTag(s.rctx(ctx), p, r.Name, tag, version)
		}
	case ctx.IsDelete() && tag != "":
		if tag == "latest" {
			s.fail(ctx, refused(errBadRequest, "the latest tag cannot be removed"))
			return
		}
		err = f.RemoveDistTag(s.rctx(ctx), p, r.Name, tag)
	default:
		s.fail(ctx, refused(errMethod, "use GET, PUT or DELETE"))
		return
	}
	if err != nil {
		s.fail(ctx, err)
		return
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]bool{"ok": true})
}
