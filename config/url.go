package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// CheckBaseURL validates an absolute http(s) URL used as a base: no user
// info, query or fragment. It returns it without a trailing slash. Its
// errors quote the URL without its password (RedactURL).
func CheckBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the whole URL: keep only its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("%q is not a URL: %v", RedactURL(s), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", RedactURL(s))
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", RedactURL(s))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: user info, query and fragment are not allowed (put a credential in the connector's token)", RedactURL(s))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// RedactURL is a URL as it may be printed: a password in its user info
// becomes "xxxxx", and a query (which may carry a key) is dropped. It
// works on strings url.Parse refuses too, so no error message quotes a
// password.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		if u.RawQuery != "" {
			u.RawQuery = "xxxxx"
		}
		return u.Redacted()
	}
	rest, scheme := s, ""
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	auth, path := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth, path = rest[:i], rest[i:]
	}
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		user, _, hasPass := strings.Cut(auth[:at], ":")
		if hasPass {
			user += ":xxxxx"
		}
		auth = user + auth[at:]
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i] + "?xxxxx"
	}
	return scheme + auth + path
}
