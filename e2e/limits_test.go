package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// hostileTarballs is an upstream whose one package, e2e-hostile 1.0.0, has
// a real tarball of about 140 bytes in its document, and whose tarball
// answer is something else: mode says what.
type hostileTarballs struct {
	URL  string
	tgz  []byte
	mode string
	// sent counts tarball body bytes the kernel took from the server.
	sent atomic.Int64
}

const hostileName = "e2e-hostile"

func startHostileTarballs(t *testing.T, mode string) *hostileTarballs {
	t.Helper()
	h := &hostileTarballs{tgz: npmTarball(t, hostileName, "1.0.0"), mode: mode}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.URL = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *hostileTarballs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	file := hostileName + "-1.0.0.tgz"
	switch r.URL.Path {
	case "/" + hostileName:
		sha := sha1.Sum(h.tgz)
		doc := fmt.Sprintf(`{"_id":%q,"name":%q,"dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":%q,"version":"1.0.0","main":"index.js","dist":{"tarball":%q,"integrity":%q,"shasum":%q}}}}`,
			hostileName, hostileName, hostileName, h.URL+"/"+hostileName+"/-/"+file, sriOf(h.tgz), hex.EncodeToString(sha[:]))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(doc))
		return
	case "/" + hostileName + "/-/" + file:
	default:
		http.NotFound(w, r)
		return
	}
	const total = 100 << 20 // what a hostile upstream would send
	header := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
	switch h.mode {
	case "no Content-Length": // and no end but the connection's
		header += "Connection: close\r\n"
	case "over Content-Length": // announces the package, then goes on
		header += fmt.Sprintf("Content-Length: %d\r\nConnection: close\r\n", len(h.tgz))
	case "huge Content-Length":
		header += fmt.Sprintf("Content-Length: %d\r\n", total)
	}
	conn, bw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	bw.WriteString(header + "\r\n")
	bw.Flush()
	chunk := make([]byte, 64<<10)
	for n := 0; n < total; n += len(chunk) {
		if _, err := conn.Write(chunk); err != nil {
			return
		}
		h.sent.Add(int64(len(chunk)))
	}
}

// TestUpstreamTarballLimits: a tarball that outgrows the connector's
// max_tarball_size or its own Content-Length fails the install, is not
// stored, leaves nothing in tmp/, and is not read to its end; one whose
// Content-Length is over the limit is refused before its body is read.
func TestUpstreamTarballLimits(t *testing.T) {
	for _, mode := range []string{"no Content-Length", "over Content-Length", "huge Content-Length"} {
		t.Run(mode, func(t *testing.T) {
			up := startHostileTarballs(t, mode)
			cfg := filepath.Join(t.TempDir(), "npmgate.yaml")
			writeFile(t, cfg, `
connectors:
  hostile:
    url: `+up.URL+`
    retries: 0
    max_tarball_size: 1MiB
feeds:
  npm:
    default: true
    connectors: [hostile]
`)
			g := startGate(t, up.URL, "", "--config", cfg)
			sb := newSandbox(t)
			project := sb.dir(t, "project")
			writeFile(t, filepath.Join(project, "package.json"), `{"name":"consumer","version":"1.0.0"}`)
			r := sb.npm(t, project, g.URL, "install", hostileName+"@1.0.0", "--fetch-retries=0")
			if r.code == 0 {
				t.Fatalf("npm install succeeded:\n%s", r)
			}
			if _, err := os.Stat(filepath.Join(project, "node_modules", hostileName)); err == nil {
				t.Error("the package was installed")
			}
			for _, dir := range []string{"tarballs", "tmp"} {
				if files := filesUnder(t, filepath.Join(g.Data, dir)); len(files) != 0 {
					t.Errorf("%s/ holds %v", dir, files)
				}
			}
			// What npmgate read is bounded by the limit and the socket
			// buffers between the two, far from the 100 MiB on offer.
			if sent := up.sent.Load(); sent > 16<<20 {
				t.Errorf("upstream sent %d bytes before npmgate stopped reading", sent)
			} else {
				t.Logf("upstream could send %d KiB before npmgate stopped reading", sent>>10)
			}
			if mode == "huge Content-Length" {
				// Refused before a byte: npm's kind of error, saying why.
				r := get(t, g.URL+hostileName+"/-/"+hostileName+"-1.0.0.tgz")
				if r.status != 502 || !strings.Contains(string(r.body), `"error":"download too large: upstream announced a tarball of 104857600 bytes, over the connector's max_tarball_size of 1048576 bytes"`) {
					t.Errorf("direct request: %d %s", r.status, r.body)
				}
			}
		})
	}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address local, a client address of its own to npmgate.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func getFrom(t *testing.T, c *http.Client, url string) response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestMissLimit: lookups of names that do not exist are bounded per
// client address. Of 60 random names from one address, at most its budget
// reach upstream and the rest get a 429 saying so, with Retry-After and no
// upstream request; a tarball of an unknown name is refused the same way;
// a name already cached still installs with npm from that address; and
// another address is still served.
func TestMissLimit(t *testing.T) {
	const budget = 20
	up := startUpstream(t, "")
	g, _ := startConfiguredGate(t, up, "", `
cache:
  miss_limit:
    client_burst: 20
    client_per_minute: 1
connectors:
  npmjs:
    url: UPSTREAM
    retries: 0
feeds:
  npm:
    default: true
    connectors: [npmjs]
`)
	// ms is cached before the flood.
	if r := get(t, g.URL+"ms/-/ms-2.1.3.tgz"); r.status != 200 {
		t.Fatalf("ms tarball: %d %s", r.status, r.body)
	}
	up.ResetStats()
	statuses := map[int]int{}
	for i := range 60 {
		r := get(t, fmt.Sprintf("%se2e-no-such-package-%d", g.URL, i))
		statuses[r.status]++
		if r.status == 429 {
			if !strings.Contains(string(r.body), `"error":"miss limit reached`) || r.header.Get("Retry-After") == "" {
				t.Errorf("429 without the JSON error or Retry-After: %v %s", r.header, r.body)
			}
		}
	}
	asked := len(upstreamPathsWith(up, "e2e-no-such-package"))
	if asked > budget || statuses[404] != budget || statuses[429] != 60-budget {
		t.Errorf("60 unknown names: upstream asked %d times, answers %v; want at most %d upstream, %d 404s, the rest 429",
			asked, statuses, budget, budget)
	}
	if r := get(t, g.URL+"e2e-no-such-package-x/-/e2e-no-such-package-x-1.0.0.tgz"); r.status != 429 {
		t.Errorf("tarball of an unknown name over the limit: %d %s", r.status, r.body)
	}
	if n := len(upstreamPathsWith(up, "e2e-no-such-package")); n != asked {
		t.Errorf("requests over the limit reached upstream: %d, then %d", asked, n)
	}
	sb := newSandbox(t)
	project := sb.dir(t, "project")
	writeFile(t, filepath.Join(project, "package.json"), `{"name":"consumer","version":"1.0.0"}`)
	mustSucceed(t, sb.npm(t, project, g.URL, "install", "ms@2.1.3"))
	other := clientFrom("127.0.0.2")
	if r := getFrom(t, other, g.URL+"e2e-no-such-package-other"); r.status != 404 {
		t.Errorf("another address: %d %s, want a 404 from upstream", r.status, r.body)
	}
	if r := getFrom(t, other, g.URL+"chalk"); r.status != 200 {
		t.Errorf("another address, chalk: %d %s", r.status, r.body)
	}
}
