package proxy

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
)

// profile answers npm profile's /-/npm/v1/user: GET shows the user's
// two-factor state; POST with {tfa: {mode, password}} starts enrolment
// (answered with the otpauth:// URI) or, with mode "disable" and a code,
// ends it; POST with {tfa: [code]} confirms a pending enrolment and is
// answered with the recovery codes. Nothing else of a profile is kept.
func (s *Server) profile(ctx *fasthttp.RequestCtx, p *auth.Principal) {
	if p == nil || p.Kind == auth.KindAPIKey {
		s.fail(ctx, authFailure(fmt.Errorf("%w: npm profile needs a user's credentials", auth.ErrUnauthenticated)))
		return
	}
	tf := s.auth.TwoFactor
	if tf == nil {
		s.fail(ctx, refused(errNoSuch, "two-factor authentication is not available on this registry"))
		return
	}
	if ctx.IsGet() {
		s.writeProfile(ctx, p.Name, nil)
		return
	}
	var body struct {
		TFA json.RawMessage `json:"tfa"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil || len(body.TFA) == 0 {
		s.fail(ctx, refused(errBadRequest, "only two-factor authentication can be set here (npm profile enable-2fa auth-and-writes)"))
		return
	}
	var confirm []string
	if json.Unmarshal(body.TFA, &confirm) == nil && len(confirm) == 1 {
		codes, ok, err := tf.Confirm(p.Name, confirm[0], time.Now())
		switch {
		case err != nil:
			s.fail(ctx, auth.Unavailable(err))
		case !ok:
			s.fail(ctx, refused(errBadRequest, "wrong code, or no enrolment pending: run npm profile enable-2fa auth-and-writes again"))
		default:
			s.log.Info("two-factor authentication enabled", "user", p.Name)
			writeJSONValue(ctx, fasthttp.StatusOK, map[string]any{"tfa": codes})
		}
		return
	}
	var set struct{ Mode, Password string }
	if err := json.Unmarshal(body.TFA, &set); err != nil {
		s.fail(ctx, refused(errBadRequest, "tfa is {mode, password} or [code]"))
		return
	}
	s.setTwoFactor(ctx, p, set.Mode, set.Password)
}

// setTwoFactor starts enrolment or disables the second factor, after the
// password (and, to disable, a code).
func (s *Server) setTwoFactor(ctx *fasthttp.RequestCtx, p *auth.Principal, mode, password string) {
	if mode != "auth-and-writes" && mode != "disable" {
		s.fail(ctx, refused(errBadRequest, fmt.Sprintf("two-factor mode %q: this registry has auth-and-writes (and disable)", mode)))
		return
	}
	if err := s.auth.CheckPassword(p.Name, password, s.missClient(ctx)); err != nil {
		s.fail(ctx, authFailure(err))
		return
	}
	if mode == "disable" {
		if err := s.auth.CheckOTP(p, string(ctx.Request.Header.Peek("npm-otp")), s.missClient(ctx), false); err != nil {
			s.fail(ctx, authFailure(err))
			return
		}
		if err := s.auth.TwoFactor.Disable(p.Name); err != nil && err != auth.ErrNoUser {
			s.fail(ctx, auth.Unavailable(err))
			return
		}
		s.log.Info("two-factor authentication disabled", "user", p.Name)
		s.writeProfile(ctx, p.Name, false)
		return
	}
	uri, err := s.auth.TwoFactor.Begin(p.Name, "npmgate")
	if err != nil {
		s.fail(ctx, refused(errBadRequest, err.Error()))
		return
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]any{"name": p.Name, "tfa": uri})
}

// writeProfile answers a profile as npm profile get reads it; tfa, when
// not nil, replaces the stored state.
func (s *Server) writeProfile(ctx *fasthttp.RequestCtx, name string, tfa any) {
	if tfa == nil {
		enabled, err := s.auth.TwoFactor.Enabled(name)
		pending, perr := s.auth.TwoFactor.Pending(name)
		if err != nil || perr != nil {
			s.fail(ctx, auth.Unavailable(fmt.Errorf("%v %v", err, perr)))
			return
		}
		switch {
		case enabled:
			tfa = map[string]any{"pending": false, "mode": "auth-and-writes"}
		case pending:
			tfa = map[string]any{"pending": true, "mode": "auth-and-writes"}
		default:
			tfa = false
		}
	}
	writeJSONValue(ctx, fasthttp.StatusOK, map[string]any{"name": name, "email": "", "email_verified": false, "tfa": tfa, "cidr_whitelist": nil})
}
