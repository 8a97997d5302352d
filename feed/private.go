package feed

import (
	"context"
	"encoding/json"

	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
)

// AuditTarget is where a feed's audit requests go.
type AuditTarget struct {
	Client *upstream.Client // nil: nothing is forwarded
	Base   string
	// Local answers from the OSV database (audit: local), merged with
	// the connector's answer when Client is set (local+connector).
	Local bool
}

// Private reports whether a name must never leave npmgate (in an audit
// body, a search, a prefetch): it has a local document in the feed or is
// claimed (owned scopes and names). It is wider than localOnly: a merged
// name with local versions is asked of connectors, never told to them.
func (f *Feed) Private(ctx context.Context, name string) bool {
	return f.privateWith(ctx, name, f.LookupLocal(name))
}

// privateWith is private with the request's reading of the local
// document.
func (f *Feed) privateWith(ctx context.Context, name string, local *LocalLookup) bool {
	if f.Claimed(name) {
		return true
	}
	d, err := local.doc(ctx)
	return err != nil || d != nil // on a read error, err on the side of not telling
}

// PruneTree removes private names from an audit request shaped like a
// v1 lockfile (quick and full audits): "requires" and the nested
// "dependencies" tree, and hides the root project's own name.
func (f *Feed) PruneTree(ctx context.Context, doc map[string]json.RawMessage) int {
	withheld := 0
	if _, ok := doc["name"]; ok {
		doc["name"] = npm.MustJSON("project")
	}
	var walk func(raw json.RawMessage) json.RawMessage
	walk = func(raw json.RawMessage) json.RawMessage {
		var node map[string]json.RawMessage
		if json.Unmarshal(raw, &node) != nil {
			return raw
		}
		for _, field := range []string{"requires", "dependencies", "devDependencies", "optionalDependencies"} {
			var m map[string]json.RawMessage
			if json.Unmarshal(node[field], &m) != nil {
				continue
			}
			for name, v := range m {
				if f.Private(ctx, name) {
					delete(m, name)
					withheld++
				} else if field == "dependencies" {
					m[name] = walk(v)
				}
			}
			node[field] = npm.MustJSON(m)
		}
		return npm.MustJSON(node)
	}
	pruned := walk(npm.MustJSON(doc))
	clear(doc)
	json.Unmarshal(pruned, &doc)
	return withheld
}

// FirstConnector is the connector search is asked of.
func (f *Feed) FirstConnector() *Connector {
	if len(f.Connectors) == 0 {
		return nil
	}
	return f.Connectors[0]
}
