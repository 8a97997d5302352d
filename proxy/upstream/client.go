// Package upstream is npmgate's client of the registries its feeds read
// through. It speaks plain HTTP through net/http, which brings the standard
// proxy variables (HTTPS_PROXY, NO_PROXY), TLS roots and streaming bodies.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Errors a caller maps to responses.
var (
	// ErrUnreachable: connection refused or reset, DNS failure, 5xx.
	ErrUnreachable = errors.New("upstream unreachable")
	// ErrTimeout: no answer, or no progress, within the timeout.
	ErrTimeout = errors.New("upstream timed out")
	// ErrBadResponse: an answer that is not what was asked for.
	ErrBadResponse = errors.New("upstream sent a bad response")
)

// MaxPackumentSize bounds one upstream document. The largest packuments on
// the public registry are tens of MB.
const MaxPackumentSize = 256 << 20

// Options configure a Client.
type Options struct {
	Name    string
	BaseURL string // absolute, no trailing slash
	Token   string
	CAFile  string
	Timeout time.Duration // connect, first byte, and idle between reads
	Retries int
	// UserAgent identifies npmgate to upstream.
	UserAgent string
	// Observe, if set, is told of every request (kind "packument" or
	// "tarball"; result ok, not_modified, not_found or error; time to the
	// response headers) and, with an empty result, of body bytes received.
	Observe func(kind, result string, d time.Duration, bytes int64)
}

// Client talks to one upstream registry.
type Client struct {
	opt  Options
	base *url.URL
	http *http.Client
}

// New makes a client.
func New(opt Options) (*Client, error) {
	base, err := url.Parse(opt.BaseURL)
	if err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opt.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(opt.CAFile)
		if err != nil {
			return nil, fmt.Errorf("connector %s: ca_file: %w", opt.Name, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("connector %s: ca_file %s holds no PEM certificate", opt.Name, opt.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: opt.Timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   opt.Timeout,
		ResponseHeaderTimeout: opt.Timeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
	c := &Client{opt: opt, base: base}
	c.http = &http.Client{
		Transport: tr,
		// A redirect may only stay on the connector's own scheme, host and
		// port: npmgate never follows upstream to an arbitrary address.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return fmt.Errorf("%w: too many redirects", ErrBadResponse)
			}
			if !c.sameOrigin(req.URL) {
				return fmt.Errorf("%w: redirect to another host (%s) refused", ErrBadResponse, req.URL.Host)
			}
			return nil
		},
	}
	return c, nil
}

// Name is the connector's name.
func (c *Client) Name() string { return c.opt.Name }

func (c *Client) sameOrigin(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.base.Scheme) && strings.EqualFold(u.Host, c.base.Host)
}

// PackumentResult is the answer to a conditional packument GET.
type PackumentResult struct {
	NotModified  bool
	NotFound     bool
	Body         []byte
	ETag         string
	LastModified string
}

// Packument fetches a full document. etag, when not empty, makes the request
// conditional. Network errors and 5xx are retried with backoff; 404 is an
// answer, not an error.
func (c *Client) Packument(ctx context.Context, name, etag string) (*PackumentResult, error) {
	u := c.opt.BaseURL + "/" + escapeName(name)
	return retry(ctx, c.opt.Retries+1, func(bool) (*PackumentResult, error) {
		start := time.Now()
		res, err := c.packumentOnce(ctx, u, etag)
		c.observePackument(res, err, time.Since(start))
		return res, err
	})
}

func (c *Client) packumentOnce(ctx context.Context, u, etag string) (*PackumentResult, error) {
	resp, cancel, err := c.get(ctx, u, "application/json", etag)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return &PackumentResult{NotModified: true, ETag: etag}, nil
	case resp.StatusCode == http.StatusNotFound:
		return &PackumentResult{NotFound: true}, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%w: %s answered %d", ErrUnreachable, c.opt.Name, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %s answered %d", ErrBadResponse, c.opt.Name, resp.StatusCode)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		// A captive portal or misconfigured proxy answering 200 with HTML.
		return nil, fmt.Errorf("%w: %s sent %q, not JSON", ErrBadResponse, c.opt.Name, mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPackumentSize+1))
	if err != nil {
		return nil, classify(err)
	}
	if len(body) > MaxPackumentSize {
		return nil, fmt.Errorf("%w: document larger than %d bytes", ErrBadResponse, MaxPackumentSize)
	}
	return &PackumentResult{Body: body, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}, nil
}

func (c *Client) observe(kind, result string, d time.Duration, bytes int64) {
	if c.opt.Observe != nil {
		c.opt.Observe(kind, result, d, bytes)
	}
}

func (c *Client) observePackument(res *PackumentResult, err error, d time.Duration) {
	switch {
	case err != nil:
		c.observe("packument", "error", d, 0)
	case res.NotModified:
		c.observe("packument", "not_modified", d, 0)
	case res.NotFound:
		c.observe("packument", "not_found", d, 0)
	default:
		c.observe("packument", "ok", d, int64(len(res.Body)))
	}
}

// TarballURL is where to fetch a tarball: the URL upstream advertised when
// it is on the connector's own origin, else the conventional path under the
// connector's base URL. A packument can thereby never send npmgate to
// another host.
func (c *Client) TarballURL(advertised, name, file string) string {
	if u, err := url.Parse(advertised); err == nil && c.sameOrigin(u) && u.User == nil {
		u.Fragment = ""
		return u.String()
	}
	return c.opt.BaseURL + "/" + name + "/-/" + file
}

// Tarball opens a tarball download. The body must be closed. Connection
// failures before the first byte are retried; a body that stalls for
// longer than the timeout fails with ErrTimeout.
func (c *Client) Tarball(ctx context.Context, u string) (io.ReadCloser, int64, error) {
	var size int64
	rc, err := retry(ctx, c.opt.Retries+1, func(bool) (io.ReadCloser, error) {
		start := time.Now()
		resp, cancel, err := c.get(ctx, u, "application/octet-stream", "")
		if err != nil {
			c.observe("tarball", "error", time.Since(start), 0)
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			c.observe("tarball", "ok", time.Since(start), 0)
			size = resp.ContentLength
			return &body{ReadCloser: resp.Body, cancel: cancel, count: func(n int64) { c.observe("tarball", "", 0, n) }}, nil
		}
		c.observe("tarball", "error", time.Since(start), 0)
		resp.Body.Close()
		cancel()
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, fmt.Errorf("%w: %s answered %d for a tarball", ErrUnreachable, c.opt.Name, resp.StatusCode)
		}
		return nil, fmt.Errorf("%w: %s answered %d for a tarball", ErrBadResponse, c.opt.Name, resp.StatusCode)
	})
	if err != nil {
		return nil, 0, err
	}
	return rc, size, nil
}

// get sends one GET. The returned cancel ends the request; an idle watchdog
// cancels it when the body makes no progress for the timeout.
func (c *Client) get(ctx context.Context, u, accept, etag string) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	req.Header.Set("Accept", accept)
	if c.opt.UserAgent != "" {
		req.Header.Set("User-Agent", c.opt.UserAgent)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if c.opt.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opt.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, nil, classify(err)
	}
	resp.Body = newIdleReader(resp.Body, c.opt.Timeout, cancel)
	return resp, cancel, nil
}

type body struct {
	io.ReadCloser
	cancel context.CancelFunc
	count  func(int64)
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.count != nil {
		b.count(int64(n))
	}
	if err != nil && err != io.EOF {
		err = classify(err)
	}
	return n, err
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// idleReader cancels its request when no Read completes for d.
type idleReader struct {
	io.ReadCloser
	d     time.Duration
	timer *time.Timer
	mu    sync.Mutex
	fired bool
}

func newIdleReader(rc io.ReadCloser, d time.Duration, cancel context.CancelFunc) *idleReader {
	r := &idleReader{ReadCloser: rc, d: d}
	r.timer = time.AfterFunc(d, func() {
		r.mu.Lock()
		r.fired = true
		r.mu.Unlock()
		cancel()
	})
	return r
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.timer.Reset(r.d)
	if err != nil && err != io.EOF {
		r.mu.Lock()
		fired := r.fired
		r.mu.Unlock()
		if fired {
			return n, fmt.Errorf("%w: no data for %s", ErrTimeout, r.d)
		}
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	return r.ReadCloser.Close()
}

func classify(err error) error {
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrUnreachable), errors.Is(err, ErrBadResponse):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}

// retry makes up to attempts tries of one request, with backoff between
// them, while a try fails with a retryable error (unreachable: network
// errors, 5xx, 429; timed out) and ctx lasts. try is told whether it is the
// last one. The answer is the first success or the last error.
func retry[T any](ctx context.Context, attempts int, try func(last bool) (T, error)) (T, error) {
	var zero T
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, backoff(attempt)); err != nil {
				break
			}
		}
		res, err := try(attempt == attempts-1)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return zero, lastErr
}

func retryable(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrTimeout)
}

func backoff(attempt int) time.Duration {
	return time.Duration(100<<(2*(attempt-1))) * time.Millisecond // 100ms, 400ms, 1.6s…
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// escapeName is how npm itself writes a name in a packument URL: a scoped
// name's '/' becomes %2f.
func escapeName(name string) string {
	if strings.HasPrefix(name, "@") {
		return strings.Replace(name, "/", "%2f", 1)
	}
	return name
}

// Response is a whole upstream answer, for the small JSON endpoints
// (audit, keys, attestations, search) that are passed through.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// MaxAPIResponse bounds an API answer read into memory.
const MaxAPIResponse = 32 << 20

// Do sends a request to rawURL (which must be on the connector's origin,
// or any URL the operator configured) and reads the whole answer. Only GET
// is retried.
func (c *Client) Do(ctx context.Context, method, rawURL string, body []byte, contentType string) (*Response, error) {
	attempts := 1
	if method == http.MethodGet {
		attempts += c.opt.Retries
	}
	return retry(ctx, attempts, func(last bool) (*Response, error) {
		res, err := c.doOnce(ctx, method, rawURL, body, contentType)
		if err != nil || res.Status < 500 || last {
			// The last try's 5xx is passed through as the answer.
			return res, err
		}
		return nil, fmt.Errorf("%w: %s answered %d", ErrUnreachable, c.opt.Name, res.Status)
	})
}

func (c *Client) doOnce(ctx context.Context, method, rawURL string, body []byte, contentType string) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*c.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.opt.UserAgent != "" {
		req.Header.Set("User-Agent", c.opt.UserAgent)
	}
	if c.opt.Token != "" {
		if u, err := url.Parse(rawURL); err == nil && c.sameOrigin(u) {
			req.Header.Set("Authorization", "Bearer "+c.opt.Token)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAPIResponse+1))
	if err != nil {
		return nil, classify(err)
	}
	if len(b) > MaxAPIResponse {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", ErrBadResponse, MaxAPIResponse)
	}
	return &Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: b}, nil
}

// BaseURL is the connector's URL.
func (c *Client) BaseURL() string { return c.opt.BaseURL }
