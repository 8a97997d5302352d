package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
			}
		})
	}
}
