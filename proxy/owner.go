package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/feed"
)

// Package ownership: every local package has maintainers (its first
// publisher, then whoever npm owner adds); only they and the feed's admins
// change it. A name a connector serves is not published over unless the
// configuration claims it for the feed.

// maxStarBody bounds the star documents looked at without publish rights.
const maxStarBody = 64 << 10

// star applies npm star or unstar: the caller's own entry in users, and
// nothing else. Any authenticated user who may read the feed may star;
// only packages published to the feed keep stars (a connector's package is
// starred on its own registry).
func (s *Server) star(ctx context.Context, f *feed.Feed, r Route, body *feed.WriteBody, p *auth.Principal) error {
	if p == nil {
		return feed.Refuse(auth.ErrUnauthenticated, "npm star needs credentials: npm login")
	}
	if err := f.Access.Load().Check(p, auth.Read); err != nil {
		if errors.Is(err, auth.ErrForbidden) {
			return feed.Refuse(auth.ErrForbidden, "%v", err)
		}
		return feed.Refuse(auth.ErrUnauthenticated, "%v", err)
	}
	return f.Star(ctx, r.Name, body, p)
}

// starredByUser answers npm stars: GET /-/_view/starredByUser?key="USER",
// the feed's local packages the user starred, as CouchDB's view rows.
func (s *Server) starredByUser(ctx *fasthttp.RequestCtx, f *feed.Feed, p *auth.Principal) {
	if err := f.Access.Load().Check(p, auth.Read); err != nil {
		s.fail(ctx, authFailure(err))
		return
	}
	key := ctx.QueryArgs().Peek("key")
	var user string
	if json.Unmarshal(key, &user) != nil {
		user = strings.Trim(string(key), `"`)
	}
	if user == "" {
		s.fail(ctx, refused(errBadRequest, `expected ?key="USER"`))
		return
	}
	type row struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	rows := []row{}
	err := s.packages.Each(s.rctx(ctx), f.Name, func(_, name string, raw []byte) error {
		d, err := feed.DecodeLocal(name, raw)
		if err != nil {
			return err
		}
		if d.Packument != nil && d.Packument.Users[user] {
			rows = append(rows, row{user, name})
		}
		return nil
	})
	if err != nil {
		s.fail(ctx, fmt.Errorf("listing stars: %w", err))
		return
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.Value, b.Value) })
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]any{"rows": rows})
}
