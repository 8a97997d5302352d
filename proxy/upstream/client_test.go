package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func newClient(t *testing.T, base string, token string) *Client {
	t.Helper()
	c, err := New(Options{Name: "test", BaseURL: base, Token: token, Timeout: 300 * time.Millisecond, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPackumentRetriesServerErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"e1"`)
		w.Write([]byte(`{"name":"x"}`))
	}))
	defer srv.Close()
	res, err := newClient(t, srv.URL, "").Packument(context.Background(), "@s/x", "")
	if err != nil || string(res.Body) != `{"name":"x"}` || res.ETag != `"e1"` || calls.Load() != 2 {
		t.Fatalf("Packument = %+v, %v after %d calls", res, err, calls.Load())
	}
}

func TestPackumentAnswers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		check   func(*PackumentResult, error) bool
	}{
		{"not found is an answer", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) },
			func(r *PackumentResult, err error) bool { return err == nil && r.NotFound }},
		{"304 to a conditional request", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("If-None-Match") == `"e1"` {
				w.WriteHeader(304)
			}
		}, func(r *PackumentResult, err error) bool { return err == nil && r.NotModified }},
		{"HTML is refused", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>"))
		}, func(r *PackumentResult, err error) bool { return errors.Is(err, ErrBadResponse) }},
		{"scoped names are escaped as npm does", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.RawPath != "/@s%2fx" && r.URL.EscapedPath() != "/@s%2fx" {
				w.WriteHeader(400)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{}`))
		}, func(r *PackumentResult, err error) bool { return err == nil && string(r.Body) == "{}" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			res, err := newClient(t, srv.URL, "").Packument(context.Background(), "@s/x", `"e1"`)
			if !tt.check(res, err) {
				t.Fatalf("Packument = %+v, %v", res, err)
			}
		})
	}
}

func TestRedirectsToAnotherHostAreRefused(t *testing.T) {
	var reached atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x.tgz", http.StatusFound)
	}))
	defer srv.Close()
	_, _, err := newClient(t, srv.URL, "secret").Tarball(context.Background(), srv.URL+"/x/-/x-1.0.0.tgz")
	if !errors.Is(err, ErrBadResponse) || reached.Load() {
		t.Fatalf("redirect off-host: err %v, other host reached %v", err, reached.Load())
	}
}

func TestStalledBodyTimesOut(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		<-stop
	}))
	defer srv.Close()
	defer close(stop)
	body, _, err := newClient(t, srv.URL, "").Tarball(context.Background(), srv.URL+"/x.tgz")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	_, err = io.ReadAll(body)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("stalled body: %v, want ErrTimeout", err)
	}
}

func TestTokenGoesOnlyToItsOrigin(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
	}))
	defer other.Close()
	c := newClient(t, srv.URL, "s3cret")
	c.Do(context.Background(), "GET", srv.URL+"/-/npm/v1/keys", nil, "")
	if a := <-got; a != "Bearer s3cret" {
		t.Errorf("own origin got %q", a)
	}
	c.Do(context.Background(), "POST", other.URL+"/-/npm/v1/security/advisories/bulk", []byte("{}"), "application/json")
	if a := <-got; a != "" {
		t.Errorf("another origin got the connector's token: %q", a)
	}
}

// TestRetryPolicy: which answers each kind of request tries again (with
// one retry configured), counted at the upstream, and what the caller gets.
func TestRetryPolicy(t *testing.T) {
	type outcome struct {
		calls  int32
		err    error // nil: an answer
		status int   // Do's answer
	}
	kinds := map[string]func(c *Client, url string) (int, error){
		"packument": func(c *Client, url string) (int, error) {
			res, err := c.Packument(context.Background(), "x", "")
			if err != nil {
				return 0, err
			}
			if res.NotFound {
				return 404, nil
			}
			return 200, nil
		},
		"tarball": func(c *Client, url string) (int, error) {
			rc, _, err := c.Tarball(context.Background(), url+"/x/-/x-1.0.0.tgz")
			if err != nil {
				return 0, err
			}
			rc.Close()
			return 200, nil
		},
		"GET": func(c *Client, url string) (int, error) {
			res, err := c.Do(context.Background(), http.MethodGet, url+"/-/npm/v1/keys", nil, "")
			if err != nil {
				return 0, err
			}
			return res.Status, nil
		},
		"POST": func(c *Client, url string) (int, error) {
			res, err := c.Do(context.Background(), http.MethodPost, url+"/-/npm/v1/security/audits/quick", []byte("{}"), "application/json")
			if err != nil {
				return 0, err
			}
			return res.Status, nil
		},
	}
	tests := []struct {
		kind   string
		status int
		want   outcome
	}{
		{"packument", 503, outcome{2, ErrUnreachable, 0}},
		{"packument", 429, outcome{2, ErrUnreachable, 0}},
		{"packument", 404, outcome{1, nil, 404}},
		{"packument", 400, outcome{1, ErrBadResponse, 0}},
		{"tarball", 503, outcome{2, ErrUnreachable, 0}},
		{"tarball", 429, outcome{2, ErrUnreachable, 0}},
		{"tarball", 404, outcome{1, ErrBadResponse, 0}},
		{"tarball", 200, outcome{1, nil, 200}},
		{"GET", 503, outcome{2, nil, 503}}, // the last try's answer is passed through
		{"GET", 429, outcome{1, nil, 429}},
		{"GET", 200, outcome{1, nil, 200}},
		{"POST", 503, outcome{1, nil, 503}}, // never sent twice
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %d", tc.kind, tc.status), func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				w.Write([]byte(`{}`))
			}))
			defer srv.Close()
			c, err := New(Options{Name: "test", BaseURL: srv.URL, Timeout: 2 * time.Second, Retries: 1})
			if err != nil {
				t.Fatal(err)
			}
			status, err := kinds[tc.kind](c, srv.URL)
			if calls.Load() != tc.want.calls {
				t.Errorf("%d requests upstream, want %d", calls.Load(), tc.want.calls)
			}
			switch {
			case tc.want.err != nil && !errors.Is(err, tc.want.err):
				t.Errorf("error %v, want %v", err, tc.want.err)
			case tc.want.err == nil && (err != nil || status != tc.want.status):
				t.Errorf("answer %d, %v; want %d", status, err, tc.want.status)
			}
		})
	}
}
