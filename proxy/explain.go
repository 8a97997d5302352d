package proxy

import (
	"context"
	"fmt"

	"github.com/npmgate/npmgate/feed"
)

// Explain decides every version of a package through a feed's rules,
// fetching the connectors' documents as a request would.
func (s *Server) Explain(ctx context.Context, feedName, name string) (*feed.Explanation, error) {
	f := s.feeds[feedName]
	if feedName == "" {
		f = s.def
	}
	if f == nil {
		return nil, fmt.Errorf("no feed %q", feedName)
	}
	return f.Explain(ctx, name)
}
