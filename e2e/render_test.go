package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// getWithHost fetches url sending host as the Host header.
func getWithHost(t *testing.T, url, host string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if body, err = gzip.NewReader(resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// metricValue is the sum of a metric's samples whose labels include
// match (e.g. `representation="full"`), scraped from npmgate's /metrics.
func metricValue(t *testing.T, g *gate, name, match string) float64 {
	t.Helper()
	r := get(t, g.URL+"metrics")
	sum := 0.0
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, match) {
			continue
		}
		if rest := line[len(name):]; rest[0] != ' ' && rest[0] != '{' {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// tarballURLs lists a document's dist.tarball values.
func tarballURLs(t *testing.T, body []byte) []string {
	t.Helper()
	var doc struct {
		Versions map[string]struct {
			Dist struct{ Tarball string } `json:"dist"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not a document: %v", err)
	}
	var urls []string
	for _, v := range doc.Versions {
		urls = append(urls, v.Dist.Tarball)
	}
	return urls
}

// TestOneRenderWhateverTheHost: without public_url, 60 requests for one
// large document with 60 distinct Host headers cost one render (the
// metric, and one file under rendered/), and each answer carries its own
// Host in every tarball URL and an ETag of its own; npm installs through
// a base other than the listen address. With public_url, the Host header
// is ignored entirely.
func TestOneRenderWhateverTheHost(t *testing.T) {
	const doc = "@parcel%2flogger" // about 350 KB: large enough to be spilled
	up := startUpstream(t, "")
	t.Run("no public_url", func(t *testing.T) {
		g := startGate(t, up.URL, "")
		port := g.URL[strings.LastIndexByte(g.URL[:len(g.URL)-1], ':')+1 : len(g.URL)-1]
		etags := map[string]bool{}
		for i := range 60 {
			host := fmt.Sprintf("h%d.example.test:%s", i, port)
			r := getWithHost(t, g.URL+doc, host, "Accept", "application/json", "Accept-Encoding", "gzip")
			if r.status != 200 {
				t.Fatalf("Host %s: %d %s", host, r.status, r.body)
			}
			urls := tarballURLs(t, r.body)
			if len(urls) == 0 {
				t.Fatal("no versions")
			}
			for _, u := range urls {
				if !strings.HasPrefix(u, "http://"+host+"/@parcel/logger/-/") {
					t.Fatalf("Host %s: tarball URL %s", host, u)
				}
			}
			etags[r.header.Get("ETag")] = true
		}
		if len(etags) != 60 {
			t.Errorf("%d distinct ETags for 60 bases", len(etags))
		}
		if n := metricValue(t, g, "npmgate_document_renders_total", `representation="full"`); n != 1 {
			t.Errorf("%v renders of one document, want 1", n)
		}
		if files, _ := os.ReadDir(filepath.Join(g.Data, "rendered")); len(files) > 2 {
			t.Errorf("%d files under rendered/, want the one document's (body, gzip)", len(files))
		}
		// The listen address gets the stored bytes: gzip, no copy.
		listen := strings.TrimSuffix(strings.TrimPrefix(g.URL, "http://"), "/")
		r := getWithHost(t, g.URL+doc, listen, "Accept", "application/json", "Accept-Encoding", "gzip")
		if r.status != 200 || r.header.Get("X-Npmgate-Cache") != "hit" || r.header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("listen address: %d, cache %q, encoding %q", r.status, r.header.Get("X-Npmgate-Cache"), r.header.Get("Content-Encoding"))
		}
		for _, u := range tarballURLs(t, r.body) {
			if !strings.HasPrefix(u, g.URL+"@parcel/logger/-/") {
				t.Fatalf("listen address: tarball URL %s", u)
			}
		}
		if n := metricValue(t, g, "npmgate_document_renders_total", ""); n != 1 {
			t.Errorf("%v renders after the listen address's request, want 1", n)
		}
		// npm through another name of the same server installs from it.
		sb := newSandbox(t)
		project := sb.dir(t, "project")
		writeFile(t, filepath.Join(project, "package.json"), `{"name":"consumer","version":"1.0.0"}`)
		other := strings.Replace(g.URL, "127.0.0.1", "localhost", 1)
		mustSucceed(t, sb.npm(t, project, other, "install", "ms@2.1.3"))
		lock, err := os.ReadFile(filepath.Join(project, "package-lock.json"))
		if err != nil || !bytes.Contains(lock, []byte(`"resolved": "`+other+`ms/-/ms-2.1.3.tgz"`)) {
			t.Errorf("package-lock.json does not resolve ms from %s:\n%s", other, lock)
		}
	})
	t.Run("public_url", func(t *testing.T) {
		const public = "https://npm.example.com/registry"
		g := startGate(t, up.URL, "", "--public-url", public)
		for i := range 20 {
			host := fmt.Sprintf("h%d.example.test", i)
			r := getWithHost(t, g.URL+doc, host, "Accept", "application/json")
			if r.status != 200 {
				t.Fatalf("Host %s: %d %s", host, r.status, r.body)
			}
			for _, u := range tarballURLs(t, r.body) {
				if !strings.HasPrefix(u, public+"/@parcel/logger/-/") {
					t.Fatalf("Host %s: tarball URL %s", host, u)
				}
			}
		}
		if n := metricValue(t, g, "npmgate_document_renders_total", ""); n != 1 {
			t.Errorf("%v renders, want 1", n)
		}
		if n := metricValue(t, g, "npmgate_document_spliced_total", ""); n != 0 {
			t.Errorf("%v spliced answers with public_url set, want 0", n)
		}
	})
}

// rss is a process's resident set size (VmRSS), and its peak (VmHWM), in
// bytes.
func rss(t *testing.T, pid int) (now, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmRSS" {
			now = n << 10
		} else {
			peak = n << 10
		}
	}
	return now, peak
}

// TestManyHostsBurstMemory: 60 concurrent requests for the largest
// document (typescript, 10 MB full), each with a Host of its own, add
// little to npmgate's peak RSS: one render, and the other bases streamed
// from it without a copy each.
func TestManyHostsBurstMemory(t *testing.T) {
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	port := g.URL[strings.LastIndexByte(g.URL[:len(g.URL)-1], ':')+1 : len(g.URL)-1]
	// The document is rendered once, for the listen address, first.
	if r := get(t, g.URL+"typescript", "Accept", "application/json"); r.status != 200 {
		t.Fatalf("typescript: %d", r.status)
	}
	_, before := rss(t, g.cmd.Process.Pid)
	cpuBefore := cpuTicks(t, g.cmd.Process.Pid)
	errs := make(chan error, 60)
	for i := range 60 {
		go func() {
			host := fmt.Sprintf("h%d.example.test:%s", i, port)
			req, _ := http.NewRequest("GET", g.URL+"typescript", nil)
			req.Host = host
			req.Header.Set("Accept", "application/json")
			resp, err := httpc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			want := []byte(`"http://` + host + `/typescript/-/typescript-`)
			body, err := io.ReadAll(resp.Body)
			switch {
			case err != nil:
				errs <- err
			case resp.StatusCode != 200 || !bytes.Contains(body, want):
				errs <- fmt.Errorf("Host %s: %d, %d bytes without %s", host, resp.StatusCode, len(body), want)
			default:
				errs <- nil
			}
		}()
	}
	for range 60 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	_, after := rss(t, g.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB before the burst, %d MiB after; the burst took %d CPU ticks (1/100 s)", before>>20, after>>20, cpuTicks(t, g.cmd.Process.Pid)-cpuBefore)
	if grew := after - before; grew > 64<<20 {
		t.Errorf("60 Hosts on one 10 MB document raised peak RSS by %d MiB, want under 64", grew>>20)
	}
	if n := metricValue(t, g, "npmgate_document_renders_total", ""); n != 1 {
		t.Errorf("%v renders, want 1", n)
	}
}

// cpuTicks is a process's user and system CPU time so far, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}
