package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/ui"
)

// routeUI labels the web UI's requests.
const routeUI = "ui"

// newUI builds the web UI over the server's feeds.
func (s *Server) newUI() error {
	u, err := ui.New(ui.Deps{
		Feeds: s.feeds, Default: s.cfg.DefaultFeed, Mem: s.mem, Snapshots: s.snapshots,
		BaseURL: s.baseURL, Log: s.log, Auth: s.auth,
		TLS:   func(ctx *fasthttp.RequestCtx) bool { return s.tls || ctx.IsTLS() },
		Admit: s.takeMiss,
	})
	s.ui = u
	return err
}

// serveUI answers a browser: the same credentials as the API decide what
// it may see; errors get the API's statuses, rendered as a page.
func (s *Server) serveUI(ctx *fasthttp.RequestCtx) {
	p, err := s.authenticate(ctx)
	if err != nil {
		err = authFailure(err)
	} else {
		// A form's body is read within the small limit, as a login's.
		s.withBody(ctx, ctx.IsPost(), smallBodyLimit, smallBodyHint, func() { err = s.ui.Serve(ctx, s.rctx(ctx), p) })
	}
	if err != nil {
		status := statusOf(err)
		headersOf(&ctx.Response.Header, err, status)
		s.ui.Error(ctx, p, status, messageOf(err, status))
		if status >= 500 {
			s.log.Warn("ui request failed", "path", string(ctx.Path()), "status", status, "err", err)
		}
	}
}
