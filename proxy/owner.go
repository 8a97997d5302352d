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
	starred := body.Users[p.Name]
	return f.UpdateLocal(ctx, r.Name, func(d *feed.LocalDoc) (*feed.LocalDoc, error) {
		if d == nil || d.Packument == nil {
			return nil, feed.Refuse(feed.ErrNotLocal, "%s is not a package published to feed %q; only local packages can be starred here (star a connector's package on its own registry)", r.Name, f.Name)
		}
		lp := d.Packument
		if body.Rev != "" && body.Rev != lp.Rev {
			return nil, feed.Refuse(feed.ErrConflict, "document revision %s is not the current one (%s); fetch it again", body.Rev, lp.Rev)
		}
		for u := range body.Users {
			if u != p.Name && body.Users[u] != lp.Users[u] {
				return nil, feed.Refuse(auth.ErrForbidden, "a star changes only your own entry in users, not %q's", u)
			}
		}
		for u := range lp.Users {
			if _, kept := body.Users[u]; !kept && u != p.Name {
				return nil, feed.Refuse(auth.ErrForbidden, "a star changes only your own entry in users, not %q's", u)
			}
		}
		if starred {
			if lp.Users == nil {
				lp.Users = map[string]bool{}
			}
			lp.Users[p.Name] = true
		} else {
			delete(lp.Users, p.Name)
		}
		lp.Rev = feed.NextRev(lp.Rev)
		return d, nil
	})
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
