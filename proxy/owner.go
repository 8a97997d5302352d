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
	"github.com/npmgate/npmgate/proxy/npm"
)

// Package ownership: every local package has maintainers (its first
// publisher, then whoever npm owner adds); only they and the feed's admins
// change it. A name a connector serves is not published over unless the
// configuration claims it for the feed.

// UpdateAs is update for a change only the package's maintainers and the
// feed's admins may make.
func (f *Feed) UpdateAs(p *auth.Principal, name, rev string, change func(*LocalDoc) error) error {
	return f.Update(name, rev, func(d *LocalDoc) error {
		if err := f.MayChange(p, d); err != nil {
			return err
		}
		return change(d)
	})
}

// MayChange refuses a change to an existing local package by anyone but
// its maintainers and the feed's admins, saying who may.
func (f *Feed) MayChange(p *auth.Principal, d *LocalDoc) error {
	if f.Access.Load().Check(p, auth.Admin) == nil {
		return nil
	}
	lp := d.Packument
	var names []string
	for _, m := range lp.Maintainers {
		if p != nil && m.Name == p.Name {
			return nil
		}
		names = append(names, m.Name)
	}
	who := "you"
	if p != nil {
		who = p.Name
	}
	if len(names) == 0 {
		return Refuse(ErrNotMaintainer, "%s has no maintainers: only an admin of feed %q (feeds.%s.access.admin) may change it", lp.Name, f.Name, f.Name)
	}
	return Refuse(ErrNotMaintainer, "%s may not change %s: only its maintainers (%s) or an admin of feed %q may; one of them can add %s with npm owner add %s %s",
		who, lp.Name, strings.Join(names, ", "), f.Name, who, who, lp.Name)
}

// CheckConnectors refuses the first publish of a name a connector of the
// feed serves: the local package would hide every upstream version from
// everyone who installs through the feed (a takeover of a public name).
// Claimed names are never asked about, and admins may publish anyway.
// When a connector cannot be asked, the publish is refused too.
func (f *Feed) CheckConnectors(name string, p *auth.Principal) error {
	if f.Claimed(name) || f.Access.Load().Check(p, auth.Admin) == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.Deadline())
	defer cancel()
	pol := f.Rules.Load()
	for i, c := range f.Connectors {
		if !pol.PerConnector[i].Name(name).Allowed {
			continue // its users never get the name from this connector
		}
		r := f.ReadConnector(ctx, c, i, name, false)
		switch {
		case r.err != nil:
			f.Deps.Log.Warn("publish refused: connector cannot be asked about the name", "feed", f.Name, "connector", c.Name, "package", name, "err", r.err)
			return &Refusal{Kind: ErrConnectorUnaskable, Cause: r.err, Msg: fmt.Sprintf("connector %q cannot be asked whether it serves %s (%v), and a name it may serve is not published over; try again, or claim the name for this feed in feeds.%s.owned_names", c.Name, name, r.err, f.Name)}
		case r.doc != nil:
			effect := "replace the public package"
			if f.Merged(name) {
				effect = "add versions to the public package"
			}
			return Refuse(ErrConnectorServes, "%s is served by connector %q of feed %q: publishing it here would %s for everyone using the feed. To publish your own package under this name, claim it in feeds.%s.owned_names (or use an owned scope); or have an admin of the feed publish it",
				name, c.Name, f.Name, effect, f.Name)
		}
	}
	return nil
}

// CheckNewMaintainers refuses maintainers who are not users of the
// server: only existing users can be added (npm owner add).
func (f *Feed) CheckNewMaintainers(d *LocalDoc, sent []Maintainer) error {
	for _, m := range sent {
		if m.Name == "" || slices.ContainsFunc(d.Packument.Maintainers, func(o Maintainer) bool { return o.Name == m.Name }) {
			continue
		}
		exists, err := f.Deps.Users.Exists(m.Name)
		if err != nil {
			return auth.Unavailable(err)
		}
		if !exists {
			return Refuse(ErrNotFound, "no user %q: only existing users can maintain a package", m.Name)
		}
	}
	return nil
}

// withMaintainers sets a version's maintainers to the package's: what the
// client sent is never kept.
func withMaintainers(version json.RawMessage, ms []Maintainer) json.RawMessage {
	var v map[string]json.RawMessage
	if json.Unmarshal(version, &v) != nil {
		return version
	}
	v["maintainers"] = npm.MustJSON(ms)
	return npm.MustJSON(v)
}

// maxStarBody bounds the star documents looked at without publish rights.
const maxStarBody = 64 << 10

// IsStar reports whether a document PUT is npm star or unstar: _id, _rev
// and users, nothing else.
func (b *WriteBody) IsStar() bool {
	return b.Users != nil && b.Versions == nil && b.DistTags == nil && b.Maintainers == nil && len(b.Attachments) == 0
}

// star applies npm star or unstar: the caller's own entry in users, and
// nothing else. Any authenticated user who may read the feed may star;
// only packages published to the feed keep stars (a connector's package is
// starred on its own registry).
func (s *Server) star(f *Feed, r Route, body *WriteBody, p *auth.Principal) error {
	if p == nil {
		return Refuse(auth.ErrUnauthenticated, "npm star needs credentials: npm login")
	}
	if err := f.Access.Load().Check(p, auth.Read); err != nil {
		if errors.Is(err, auth.ErrForbidden) {
			return Refuse(auth.ErrForbidden, "%v", err)
		}
		return Refuse(auth.ErrUnauthenticated, "%v", err)
	}
	starred := body.Users[p.Name]
	return f.UpdateLocal(r.Name, func(d *LocalDoc) (*LocalDoc, error) {
		if d == nil || d.Packument == nil {
			return nil, Refuse(ErrNotLocal, "%s is not a package published to feed %q; only local packages can be starred here (star a connector's package on its own registry)", r.Name, f.Name)
		}
		lp := d.Packument
		if body.Rev != "" && body.Rev != lp.Rev {
			return nil, Refuse(ErrConflict, "document revision %s is not the current one (%s); fetch it again", body.Rev, lp.Rev)
		}
		for u := range body.Users {
			if u != p.Name && body.Users[u] != lp.Users[u] {
				return nil, Refuse(auth.ErrForbidden, "a star changes only your own entry in users, not %q's", u)
			}
		}
		for u := range lp.Users {
			if _, kept := body.Users[u]; !kept && u != p.Name {
				return nil, Refuse(auth.ErrForbidden, "a star changes only your own entry in users, not %q's", u)
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
		lp.Rev = NextRev(lp.Rev)
		return d, nil
	})
}

// starredByUser answers npm stars: GET /-/_view/starredByUser?key="USER",
// the feed's local packages the user starred, as CouchDB's view rows.
func (s *Server) starredByUser(ctx *fasthttp.RequestCtx, f *Feed, p *auth.Principal) {
	if err := f.Access.Load().Check(p, auth.Read); err != nil {
		s.failAuth(ctx, err)
		return
	}
	key := ctx.QueryArgs().Peek("key")
	var user string
	if json.Unmarshal(key, &user) != nil {
		user = strings.Trim(string(key), `"`)
	}
	if user == "" {
		writeError(ctx, fasthttp.StatusBadRequest, `expected ?key="USER"`)
		return
	}
	type row struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	rows := []row{}
	err := s.packages.Each(detached, f.Name, func(_, name string, raw []byte) error {
		d, err := DecodeLocal(name, raw)
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
