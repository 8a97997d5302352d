package feed

import (
	"context"
	"fmt"
	"time"
)

// Verdict is a policy's decision on one version of a package.
type Verdict struct {
	Version   string
	Connector string
	Allowed   bool
	Rule      string
	Reason    string
}

// Explanation is what npmgate explain prints for a package.
type Explanation struct {
	Feed  string
	Local bool // published to the feed: policies do not apply
	// NameBlocked holds, per connector, why the name itself is refused.
	NameBlocked map[string]string
	Versions    []Verdict
}

// Explain decides every version of a package through the feed's rules,
// fetching the connectors' documents as a request would.
func (f *Feed) Explain(ctx context.Context, name string) (*Explanation, error) {
	ex := &Explanation{Feed: f.Name, NameBlocked: map[string]string{}}
	local, err := f.ReadLocal(ctx, name)
	if err != nil {
		return nil, err
	}
	if f.LocalOnly(name, local) {
		ex.Local = true
		return ex, nil
	}
	pol := f.Rules.Load()
	now := time.Now()
	for i, c := range f.Connectors {
		p := pol.PerConnector[i]
		if d := p.Name(name); !d.Allowed {
			ex.NameBlocked[c.Name] = d.Reason
			continue
		}
		r := f.ReadConnector(ctx, c, i, name, false)
		if r.err != nil {
			return nil, fmt.Errorf("connector %s: %w", c.Name, r.err)
		}
		if r.notFound {
			continue
		}
		for _, t := range r.takedowns {
			ex.Versions = append(ex.Versions, Verdict{Version: t.Version, Connector: c.Name, Rule: "takedown", Reason: t.Reason()})
		}
		all := docFacts(p, r.doc)
		for i, v := range r.doc.Versions {
			d := p.Version(name, all[i], now)
			ex.Versions = append(ex.Versions, Verdict{Version: v.Version, Connector: c.Name, Allowed: d.Allowed, Rule: d.Rule, Reason: d.Reason})
		}
	}
	return ex, nil
}
