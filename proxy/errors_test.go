package proxy

import (
	"context"
	"fmt"
	"testing"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
)

// TestStatusOfEverySentinel: each error the feed, npm, cache, auth and
// upstream layers return, and each kind of refused write, maps to its
// one status, also when wrapped.
func TestStatusOfEverySentinel(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{errBadPath, 400}, {errBadHost, 400}, {npm.ErrInvalidName, 400}, {npm.ErrInvalidPublish, 400},
		{npm.ErrTarballTooLarge, 413},
		{feed.ErrBlocked, 403},
		{errMissLimit, 429},
		{feed.ErrNotFound, 404}, {feed.ErrVersionNotFound, 404},
		{context.Canceled, 503}, {auth.ErrUnavailable, 503},
		{upstream.ErrTimeout, 504}, {context.DeadlineExceeded, 504},
		{upstream.ErrUnreachable, 502}, {upstream.ErrBadResponse, 502}, {cache.ErrIntegrity, 502},
		{npm.ErrInvalidPackument, 502}, {npm.ErrNoIntegrity, 502}, {cache.ErrTooLarge, 502},
		{auth.ErrUnauthenticated, 401}, {auth.ErrForbidden, 403}, {feed.ErrNotMaintainer, 403}, {feed.ErrConnectorServes, 403},
		{feed.ErrNotLocal, 404}, {feed.ErrConflict, 409},
		{feed.Refuse(feed.ErrConflict, "x"), 409}, {feed.Refuse(npm.ErrInvalidPublish, "x"), 400},
		// A connector that cannot be asked: its cause's 5xx, else 502.
		{&feed.Refusal{Kind: feed.ErrConnectorUnaskable, Cause: upstream.ErrTimeout}, 504},
		{&feed.Refusal{Kind: feed.ErrConnectorUnaskable, Cause: context.Canceled}, 503},
		{&feed.Refusal{Kind: feed.ErrConnectorUnaskable, Cause: feed.ErrNotFound}, 502},
		{&feed.Refusal{Kind: feed.ErrConnectorUnaskable, Cause: fmt.Errorf("odd")}, 502},
		{fmt.Errorf("anything else"), 500},
	} {
		if got := statusOf(fmt.Errorf("wrapped: %w", tc.err)); got != tc.status {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.status)
		}
	}
	// ParsePublish's own errors keep their message and their status.
	_, err := npm.ParsePublish(npm.PublishRequest{Name: "pkg"}, npm.PublishLimits{MaxSize: 1})
	if got := statusOf(err); got != 400 || messageOf(err, got) != "a publish carries exactly one version, not 0" {
		t.Errorf("ParsePublish refusal: %d %q", got, messageOf(err, got))
	}
}
