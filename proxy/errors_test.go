package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
	"github.com/valyala/fasthttp"
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
		// The edge's own refusals.
		{errBadRequest, 400}, {errNoSuch, 404}, {errMethod, 405}, {errSlowRequest, 408},
		{errBodyTooLarge, 413}, {errMediaType, 415}, {errHeadersTooLarge, 431},
		{errBusy, 503}, {errNotReady, 503}, {auth.ErrThrottled, 429},
		{refused(errMethod, "x"), 405}, {authFailure(fmt.Errorf("no such token")), 401},
		{&upstreamStatus{status: 418, msg: "x"}, 418},
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

// TestRespondHeaders: the one mapping also gives each error the headers a
// client acts on, and the client reads the refusal's own message.
func TestRespondHeaders(t *testing.T) {
	for _, tc := range []struct {
		name         string
		err          error
		status       int
		header, want string
		msg          string
	}{
		{"401 asks for credentials", authFailure(errors.New("bad token")), 401, "WWW-Authenticate", `Basic realm="npmgate"`, "bad token"},
		{"a refused write as 401 too", feed.Refuse(auth.ErrUnauthenticated, "log in"), 401, "WWW-Authenticate", `Basic realm="npmgate"`, "log in"},
		{"busy says when to come back", refused(errBusy, "full"), 503, "Retry-After", "10", "full"},
		{"miss limit", limited(3*time.Second, "this client", ""), 429, "Retry-After", "3", ""},
		{"403 asks for nothing", refused(auth.ErrForbidden, "no"), 403, "WWW-Authenticate", "", "no"},
		{"500 hides its cause", errors.New("disk at /secret failed"), 500, "WWW-Authenticate", "", "internal error; the npmgate log has the details"},
	} {
		var ctx fasthttp.RequestCtx
		if got := respond(&ctx, tc.err); got != tc.status || ctx.Response.StatusCode() != tc.status {
			t.Errorf("%s: status %d/%d, want %d", tc.name, got, ctx.Response.StatusCode(), tc.status)
		}
		if got := string(ctx.Response.Header.Peek(tc.header)); got != tc.want {
			t.Errorf("%s: %s %q, want %q", tc.name, tc.header, got, tc.want)
		}
		var e struct{ Error string }
		if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || (tc.msg != "" && e.Error != tc.msg) {
			t.Errorf("%s: body %s, want error %q", tc.name, ctx.Response.Body(), tc.msg)
		}
	}
}

// TestErrorsAreAnsweredInOnePlace: no handler writes an error status of
// its own; they return or pass errors to fail/respond (errors.go).
func TestErrorsAreAnsweredInOnePlace(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fs := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") || file == "errors.go" {
			continue
		}
		af, err := parser.ParseFile(fs, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "writeError" {
				t.Errorf("%s: writeError outside errors.go; return the error to fail or respond", fs.Position(call.Pos()))
			}
			return true
		})
	}
}
