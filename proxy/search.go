package proxy

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/valyala/fasthttp"
)

// search answers npm search: the feed's local packages first, then the
// connector's results without names the feed owns or filters. Paging runs
// over that combined list: the connector is asked only for the part of
// the page local results do not fill. Words of the query that name
// private packages are not sent upstream.
func (s *Server) search(ctx *fasthttp.RequestCtx, f *feed.Feed) {
	q := ctx.QueryArgs()
	text := strings.TrimSpace(string(q.Peek("text")))
	size, _ := strconv.Atoi(string(q.Peek("size")))
	if size <= 0 || size > 250 {
		size = 20
	}
	from, _ := strconv.Atoi(string(q.Peek("from")))
	from = max(from, 0)
	local, known := f.SearchLocal(s.rctx(ctx), text)
	localNames := map[string]bool{}
	for _, o := range local {
		localNames[o.Package.Name] = true
	}
	var page []json.RawMessage
	for i := from; i < len(local) && len(page) < size; i++ {
		page = append(page, npm.MustJSON(local[i]))
	}
	total := len(local)
	// A query that names anything private (a local or owned name, a
	// private scope, a local user) is answered from local packages only:
	// forwarding the rest of it would still tell the connector what was
	// looked for around the private word.
	forward := text != "" && !f.SearchTouchesPrivate(s.rctx(ctx), text, known)
	if c := f.FirstConnector(); c != nil && forward {
		want := size - len(page)
		connFrom := max(from-len(local), 0)
		v := url.Values{"text": {strings.Join(strings.Fields(text), " ")}, "size": {strconv.Itoa(max(want, 1))}, "from": {strconv.Itoa(connFrom)}}
		res, err := c.Client.Do(s.rctx(ctx), "GET", c.Client.BaseURL()+"/-/v1/search?"+v.Encode(), nil, "")
		if err == nil && res.Status == 200 {
			var answer struct {
				Objects []json.RawMessage `json:"objects"`
				Total   int               `json:"total"`
			}
			if json.Unmarshal(res.Body, &answer) == nil {
				pol := f.Rules.Load().PerConnector[0]
				total += max(answer.Total, 0)
				for _, raw := range answer.Objects {
					var o struct {
						Package struct{ Name string } `json:"package"`
					}
					json.Unmarshal(raw, &o)
					name := o.Package.Name
					if localNames[name] || npm.ValidateName(name) != nil || f.Private(s.rctx(ctx), name) || !pol.Name(name).Allowed {
						total--
						continue
					}
					if want > 0 {
						page = append(page, raw)
						want--
					}
				}
			}
		} else if err != nil {
			s.log.Warn("search: connector failed; answering from local packages", "connector", c.Name, "err", err)
		}
	}
	if page == nil {
		page = []json.RawMessage{}
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]any{"objects": page, "total": total, "time": time.Now().UTC().Format(time.RFC3339)})
}
