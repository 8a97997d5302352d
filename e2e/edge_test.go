package e2e

// Tests of what reaches npmgate at the edge: request bodies read only
// after the caller passed its checks and within the route's limit,
// audit bodies inflated within a bound, fasthttp's own error answers,
// headers every response carries, and transfers that fail after their
// status line.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// zeros is an endless body of zero bytes, for bodies no test holds.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// chunkedBody is n bytes of zeros in chunked transfer coding.
func chunkedBody(n int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		cw := httputil.NewChunkedWriter(pw)
		if _, err := io.Copy(cw, io.LimitReader(zeros{}, n)); err != nil {
			return
		}
		cw.Close()
		pw.Write([]byte("\r\n"))
		pw.Close()
	}()
	return pr
}

// rawRequest sends head (the request line and headers, each ending in
// CRLF, without the blank line) and then body on a fresh connection to
// the gate, reading the answer while the body is still being written: an
// answer given from the headers alone arrives however much of the body
// npmgate took.
func rawRequest(t *testing.T, g *gate, head string, body io.ReadCloser) (response, error) {
	t.Helper()
	u, _ := url.Parse(g.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		return response{}, err
	}
	if body != nil {
		go func() {
			io.Copy(conn, body)
			body.Close()
		}()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// vmRSS is the resident memory of the npmgate process, in bytes.
func vmRSS(t *testing.T, g *gate) int64 { return procStatus(t, g, "VmRSS:") }

// vmHWM is the peak resident memory of the npmgate process so far: what
// a burst cost, even if npmgate gave it back since.
func vmHWM(t *testing.T, g *gate) int64 { return procStatus(t, g, "VmHWM:") }

func procStatus(t *testing.T, g *gate, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/PID/status", field)
	return 0
}

// burst runs n requests at once and checks each answer with check.
func burst(t *testing.T, n int, req func() (response, error), check func(response) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := req()
			if err == nil {
				err = check(r)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// jsonError checks an npm-style error answer of a status.
func jsonError(r response, statuses ...int) error {
	var e struct {
		Error string `json:"error"`
	}
	ok := false
	for _, st := range statuses {
		ok = ok || r.status == st
	}
	if !ok || json.Unmarshal(r.body, &e) != nil || e.Error == "" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		return fmt.Errorf("answer %d (%s) %.300s, want %v with a JSON error", r.status, r.header.Get("Content-Type"), r.body, statuses)
	}
	return nil
}

// rssBound is how much npmgate's peak resident memory may grow over a
// burst of refused bodies: below any one of the bodies.
const rssBound = 64 << 20

// TestBodiesAfterChecks sends bodies npmgate must refuse: anonymous
// publishes declaring 89 MB, with and without a length, and anonymous
// logins over the small limit: each is a 401 or 413 npm can print,
// answered from the headers (or cut at the limit), and npmgate's memory
// stays flat. A token holder's chunked publish and dist-tag change past
// their limits are cut there with a 413 too.
func TestBodiesAfterChecks(t *testing.T) {
	s := newPublishSetup(t)
	g := s.g
	u, _ := url.Parse(g.URL)
	const declared = 89_000_000
	head := func(method, path string, n int64, extra ...string) string {
		h := method + " " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\n"
		if n >= 0 {
			h += "Content-Length: " + strconv.FormatInt(n, 10) + "\r\n"
		} else {
			h += "Transfer-Encoding: chunked\r\n"
		}
		for _, e := range extra {
			h += e + "\r\n"
		}
		return h
	}
	before := vmRSS(t, g)
	t.Run("anonymous publish with a length", func(t *testing.T) {
		burst(t, 20, func() (response, error) {
			return rawRequest(t, g, head("PUT", "/e2e-big", declared), io.NopCloser(io.LimitReader(zeros{}, declared)))
		}, func(r response) error { return jsonError(r, 401) })
	})
	t.Run("anonymous publish chunked", func(t *testing.T) {
		burst(t, 10, func() (response, error) {
			return rawRequest(t, g, head("PUT", "/e2e-big", -1), chunkedBody(declared))
		}, func(r response) error { return jsonError(r, 401) })
	})
	t.Run("anonymous login", func(t *testing.T) {
		burst(t, 10, func() (response, error) {
			return rawRequest(t, g, head("PUT", "/-/user/org.couchdb.user:mallory", 5<<20), io.NopCloser(io.LimitReader(zeros{}, 5<<20)))
		}, func(r response) error { return jsonError(r, 413) })
		burst(t, 10, func() (response, error) {
			return rawRequest(t, g, head("PUT", "/-/user/org.couchdb.user:mallory", -1), chunkedBody(5<<20))
		}, func(r response) error { return jsonError(r, 413) })
	})
	after := vmHWM(t, g)
	t.Logf("npmgate RSS %d MiB before, peak %d MiB", before>>20, after>>20)
	if after-before > rssBound {
		t.Errorf("npmgate's RSS grew by %d MiB over the refused bodies, want less than %d MiB", (after-before)>>20, rssBound>>20)
	}
	t.Run("token holder over the limits", func(t *testing.T) {
		auth := "Authorization: Bearer " + s.token
		// Chunked: counted while read and cut at the publish limit
		// (64 MiB/3*4 + 4 MiB).
		burst(t, 1, func() (response, error) {
			return rawRequest(t, g, head("PUT", "/e2e-big", -1, auth), chunkedBody(100<<20))
		}, func(r response) error { return jsonError(r, 413) })
		burst(t, 1, func() (response, error) {
			return rawRequest(t, g, head("PUT", "/-/package/e2e-big/dist-tags/next", -1, auth), chunkedBody(5<<20))
		}, func(r response) error { return jsonError(r, 413) })
	})
	if r := get(t, g.URL+"e2e-big"); r.status != 404 {
		t.Errorf("GET e2e-big after the refused publishes: %d, want 404", r.status)
	}
	if r := get(t, g.URL+"-/ping"); r.status != 200 {
		t.Errorf("ping after the burst: %d", r.status)
	}
}

// TestAuditBodyLimits sends 20 gzip bombs at once (69 KiB inflating to
// 70 MiB): each is a 413 and npmgate's memory stays flat. Encodings
// npmgate does not decode are a 415 naming what it supports, a corrupt
// gzip a 400; none reaches the audit service.
func TestAuditBodyLimits(t *testing.T) {
	s := newAuditSetup(t)
	bulkURL := s.g.URL + "-/npm/v1/security/advisories/bulk"
	bomb := gzipSpaces(t, 70<<20)
	t.Logf("gzip bomb: %d KiB inflating to 70 MiB", len(bomb)>>10)
	before := vmRSS(t, s.g)
	burst(t, 20, func() (response, error) {
		req, _ := http.NewRequest("POST", bulkURL, bytes.NewReader(bomb))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := httpc.Do(req)
		if err != nil {
			return response{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: b}, err
	}, func(r response) error { return jsonError(r, 413) })
	after := vmHWM(t, s.g)
	t.Logf("npmgate RSS %d MiB before, peak %d MiB", before>>20, after>>20)
	if after-before > rssBound {
		t.Errorf("npmgate's RSS grew by %d MiB over 20 gzip bombs, want less than %d MiB", (after-before)>>20, rssBound>>20)
	}

	plain := []byte(`{"ms":["2.1.3"]}`)
	for _, enc := range []string{"br", "zstd", "deflate", "compress", "gzip, br"} {
		t.Run(enc, func(t *testing.T) {
			r := post(t, bulkURL, plain, "Content-Type", "application/json", "Content-Encoding", enc)
			if err := jsonError(r, 415); err != nil {
				t.Error(err)
			} else if !strings.Contains(string(r.body), "gzip") {
				t.Errorf("415 %s does not say gzip is supported", r.body)
			}
		})
	}
	corrupt := gzipBytes(t, plain)
	corrupt[len(corrupt)/2] ^= 0xff
	for name, body := range map[string][]byte{"corrupt gzip": corrupt, "truncated gzip": gzipBytes(t, plain)[:20]} {
		t.Run(name, func(t *testing.T) {
			if err := jsonError(post(t, bulkURL, body, "Content-Type", "application/json", "Content-Encoding", "gzip"), 400); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("x-gzip is gzip", func(t *testing.T) {
		s.svc.reset()
		r := post(t, bulkURL, gzipBytes(t, plain), "Content-Type", "application/json", "Content-Encoding", "x-gzip")
		if r.status != 200 {
			t.Errorf("x-gzip audit: %d %s", r.status, r.body)
		}
	})
	if n := len(s.svc.requests()); n > 1 {
		t.Errorf("the audit service received %d requests, want only the x-gzip one", n)
	}
}

// leaksPart reports a run of 8 characters of secret found in text.
func leaksPart(text, secret string) (string, bool) {
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+8]) {
			return secret[i : i+8], true
		}
	}
	return "", false
}

// TestMalformedHeadersEchoNoCredential sends a real token in headers
// fasthttp cannot parse: with a NUL, with a bare CR, folded onto a second
// line, and in a header block over 16 KiB. Each answer is a JSON 400 or
// 431 that holds no part of the token, and no log line (at debug level,
// where fasthttp's own errors go) does either.
func TestMalformedHeadersEchoNoCredential(t *testing.T) {
	ps := newPublishSetupWith(t, startUpstream(t, ""), publishConfig+"log:\n  level: debug\n")
	g, token := ps.g, ps.token
	u, _ := url.Parse(g.URL)
	start := "GET /ms HTTP/1.1\r\nHost: " + u.Host + "\r\n"
	for _, c := range []struct {
		name, head string
		status     int
	}{
		{"NUL after the token", start + "Authorization: Bearer " + token + "\x00\r\n", 400},
		{"NUL inside the token", start + "Authorization: Bearer " + token[:12] + "\x00" + token[12:] + "\r\n", 400},
		{"bare CR after the token", start + "Authorization: Bearer " + token + "\rX-Evil: 1\r\n", 400},
		{"a line feed inside the token", start + "Authorization: Bearer " + token[:12] + "\n" + token[12:] + "\r\n", 400},
		{"a header block over 16 KiB", start + "Authorization: Bearer " + token + "\r\nX-Padding: " + strings.Repeat("p", 20<<10) + "\r\n", 431},
		{"a header over 16 KiB after the token", start + "X-Padding: " + strings.Repeat("p", 20<<10) + "\r\nAuthorization: Bearer " + token + "\r\n", 431},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := rawRequest(t, g, c.head, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := jsonError(r, c.status); err != nil {
				t.Error(err)
			}
			var all strings.Builder
			r.header.Write(&all)
			all.Write(r.body)
			if part, ok := leaksPart(all.String(), token); ok {
				t.Errorf("the answer holds %q of the token:\n%s", part, all.String())
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no X-Content-Type-Options: nosniff on fasthttp's error answer")
			}
			t.Logf("%d %s", r.status, r.body)
		})
	}
	g.stop(t)
	for _, line := range strings.Split(g.logText(), "\n") {
		if part, ok := leaksPart(line, token); ok {
			t.Errorf("npmgate's log holds %q of the token: %.300q", part, line)
		}
	}
}

// TestEveryAnswerIsNosniff goes over the routes and their answers, good
// and bad: every one carries X-Content-Type-Options: nosniff, and every
// error is an npm-style JSON body with Content-Type application/json.
func TestEveryAnswerIsNosniff(t *testing.T) {
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "healthz", 200},
		{"GET", "readyz", 200},
		{"GET", "metrics", 200},
		{"GET", "-/ping", 200},
		{"GET", "ms", 200},
		{"HEAD", "ms", 200},
		{"GET", "ms/2.1.3", 200},
		{"GET", "ms/-/ms-2.1.3.tgz", 200},
		{"HEAD", "ms/-/ms-2.1.3.tgz", 200},
		{"GET", "e2e-no-such-package-q9", 404},
		{"GET", "ms/-/ms-9.9.9.tgz", 404},
		{"GET", "ms/%2e%2e", 400},
		{"GET", "-/whoami", 401},
		{"GET", "-/no-such-endpoint", 404},
		{"POST", "ms/2.1.3", 405},
		{"PUT", "ms", 401},
		{"POST", "-/npm/v1/security/advisories/bulk", 415},
	} {
		t.Run(c.method+" /"+c.path, func(t *testing.T) {
			headers := []string{}
			if c.status == 415 {
				headers = append(headers, "Content-Encoding", "br")
			}
			r := do(t, c.method, g.URL+c.path, headers...)
			if r.status != c.status {
				t.Errorf("%d %.200s, want %d", r.status, r.body, c.status)
			}
			if v := r.header.Get("X-Content-Type-Options"); v != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", v)
			}
			if r.status >= 400 && c.method != "HEAD" {
				if err := jsonError(r, c.status); err != nil {
					t.Error(err)
				}
			}
		})
	}
	t.Run("request fasthttp cannot parse", func(t *testing.T) {
		u, _ := url.Parse(g.URL)
		r, err := rawRequest(t, g, "GET /ms HTTP/1.1\r\nHost: "+u.Host+"\r\nX-Bad: a\x00b\r\n", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := jsonError(r, 400); err != nil {
			t.Error(err)
		}
		if v := r.header.Get("X-Content-Type-Options"); v != "nosniff" {
			t.Errorf("X-Content-Type-Options %q, want nosniff", v)
		}
	})
}

// accessLine waits for the access log line of the nth request to path
// (counting from 1).
func accessLine(t *testing.T, g *gate, path string, nth int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var lines []string
		for _, l := range strings.Split(g.logText(), "\n") {
			if strings.Contains(l, "msg=request") && strings.Contains(l, "path="+path+" ") {
				lines = append(lines, l)
			}
		}
		if len(lines) >= nth {
			return lines[nth-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for request %d to %s", nth, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var bytesField = regexp.MustCompile(`\bbytes=([0-9]+)\b`)

// TestAbortedTransferIsLogged breaks tarball transfers after their status
// line: a client that hangs up in the middle of a 16 MiB tarball sent
// from disk, and an upstream that resets in the middle of one npmgate
// streams through. The access log line says the transfer was aborted and
// how many bytes went out, not status=200 with the whole size, and the
// metrics count the request under status 499, not 200.
func TestAbortedTransferIsLogged(t *testing.T) {
	s := newPublishSetup(t)
	g := s.g
	const size = 16 << 20
	body := npmPublishBody(t, "e2e-abort", "1.0.0", "latest", bigTarball(t, "e2e-abort", "1.0.0", size))
	if r, err := putPublish(g.URL+"e2e-abort", body, "Authorization", "Bearer "+s.token); err != nil || r.status != 200 {
		t.Fatalf("publish: %d %s %v", r.status, r.body, err)
	}

	t.Run("client hangs up", func(t *testing.T) {
		const path = "/e2e-abort/-/e2e-abort-1.0.0.tgz"
		u, _ := url.Parse(g.URL)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		conn.SetDeadline(time.Now().Add(time.Minute))
		io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n")
		status, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(status, " 200 ") {
			t.Fatalf("status line %q, %v", status, err)
		}
		conn.Close() // with most of the tarball unread: a reset
		line := accessLine(t, g, path, 1)
		t.Log(line)
		m := bytesField.FindStringSubmatch(line)
		if !strings.Contains(line, "aborted=true") || m == nil {
			t.Fatalf("the access log line of the aborted transfer does not say so: %s", line)
		}
		if n, _ := strconv.Atoi(m[1]); n >= size {
			t.Errorf("the aborted transfer is logged with bytes=%d, the whole tarball is over %d", n, size)
		}
	})

	t.Run("upstream resets", func(t *testing.T) {
		// Whether npmgate has sent its status line when the reset comes
		// is a race; either way the log line must say what the client got.
		const path = "/typescript/-/typescript-1.0.0.tgz"
		s.up.SetResetTarballs(true)
		r, err := fetch("GET", strings.TrimSuffix(g.URL, "/")+path)
		s.up.SetResetTarballs(false)
		t.Logf("client: %d, %d bytes, %v", r.status, len(r.body), err)
		line := accessLine(t, g, path, 1)
		t.Log(line)
		switch {
		case r.status >= 500 && err == nil:
			if !strings.Contains(line, "status="+strconv.Itoa(r.status)) || strings.Contains(line, "aborted=") {
				t.Errorf("the client got a %d; the log line says: %s", r.status, line)
			}
		default:
			m := bytesField.FindStringSubmatch(line)
			if !strings.Contains(line, "aborted=true") || m == nil {
				t.Fatalf("the client got a broken answer (%d, %v); the log line says: %s", r.status, err, line)
			}
			if n, _ := strconv.Atoi(m[1]); n < len(r.body) {
				t.Errorf("logged bytes=%d, the client received %d", n, len(r.body))
			}
		}
	})

	metrics := string(get(t, g.URL+"metrics").body)
	if !regexp.MustCompile(`npmgate_http_requests_total\{[^}]*route="tarball"[^}]*status="499"\} [12]\b`).MatchString(metrics) {
		t.Errorf("the metrics do not count the aborted transfers as status 499:\n%s", grepLines(metrics, "npmgate_http_requests_total"))
	}
	if regexp.MustCompile(`npmgate_http_requests_total\{[^}]*route="tarball"[^}]*status="200"\}`).MatchString(metrics) {
		t.Errorf("the metrics count an aborted transfer as a 200:\n%s", grepLines(metrics, "npmgate_http_requests_total"))
	}
}

// grepLines is the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestLargeBodiesBounded holds the only large-body slot (publish.
// large_bodies: 1) with a publish whose body is still arriving: a second
// large body waits for it, then gets a 503 with Retry-After npm retries;
// once the first is gone, the slot is free again.
func TestLargeBodiesBounded(t *testing.T) {
	ps := newPublishSetupWith(t, startUpstream(t, ""), publishConfig+"publish:\n  large_bodies: 1\n")
	g, token := ps.g, ps.token
	u, _ := url.Parse(g.URL)
	head := "PUT /e2e-slots HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\nAuthorization: Bearer " + token + "\r\nTransfer-Encoding: chunked\r\n"

	// The first publish sends 2 MiB and then nothing until the test ends.
	holder, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	io.WriteString(holder, head+"\r\n")
	cw := httputil.NewChunkedWriter(holder)
	if _, err := io.Copy(cw, io.LimitReader(zeros{}, 2<<20)); err != nil {
		t.Fatal(err)
	}
	// Let npmgate take the slot for it: the order of the two requests is
	// all this wait is for.
	time.Sleep(500 * time.Millisecond)

	r, err := rawRequest(t, g, head, chunkedBody(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	if err := jsonError(r, 503); err != nil {
		t.Error(err)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	t.Logf("%d %s", r.status, r.body)

	holder.Close() // its body ends short: npmgate answers it and frees the slot
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err = rawRequest(t, g, head, chunkedBody(2<<20))
		if err == nil && r.status != 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot stayed taken after its body was gone: %d %s %v", r.status, r.body, err)
		}
	}
	if err := jsonError(r, 400); err != nil {
		t.Error(err) // zeros are no JSON document
	}
}
