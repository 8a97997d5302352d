package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPrometheusScrapesAnInstall runs a real Prometheus on loopback
// scraping a real npmgate during npm ci, then asks Prometheus' HTTP API
// whether the counters moved as the installs imply.
func TestPrometheusScrapesAnInstall(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: run make tools as root, or apt-get install prometheus")
	}
	lf := fixtureLockfile(t)
	up := startUpstream(t, "")
	// The metrics on their own address, behind a token, as the README
	// suggests running them; Prometheus sends the token.
	const token = "e2e-metrics-token-5f0c9a7d3b1e"
	target := freeAddr(t)
	gateConf := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, gateConf, fmt.Sprintf(`connectors:
  npmjs:
    url: %s
feeds:
  npm:
    default: true
    connectors: [npmjs]
metrics:
  listen: %q
  token: ${METRICS_TOKEN}
`, up.URL, target))
	data := t.TempDir()
	g := startGateWith(t, data, []string{"METRICS_TOKEN=" + token}, "--listen", "127.0.0.1:0", "--data", data, "--config", gateConf)
	if r, err := fetch("GET", "http://"+target+"/metrics"); err != nil || r.status != 401 {
		t.Fatalf("/metrics without the token: %v %v, want 401", r, err)
	}
	if r := get(t, g.URL+"metrics"); strings.Contains(string(r.body), "npmgate_http_requests_total") {
		t.Errorf("/metrics on the main address with metrics.listen set: %d with the metrics", r.status)
	}

	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: npmgate
    authorization:
      credentials: %q
    static_configs:
      - targets: [%q]
`, token, target)), 0o644)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	api := "http://" + addr
	waitUntil(t, 30*time.Second, "prometheus ready", func() bool {
		r, err := fetch("GET", api+"/-/ready")
		return err == nil && r.status == 200
	})

	sb := newSandbox(t)
	mustSucceed(t, sb.npm(t, sb.copyProject(t, "cold"), g.URL, "ci"))
	tarballs := len(lf.tarballs(t))
	query := func(q string) float64 {
		r, err := fetch("GET", api+"/api/v1/query?query="+url.QueryEscape(q))
		if err != nil || r.status != 200 {
			return -1
		}
		var res struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(r.body), &res) != nil || len(res.Data.Result) == 0 {
			return -1
		}
		v, _ := strconv.ParseFloat(res.Data.Result[0].Value[1].(string), 64)
		return v
	}
	waitUntil(t, 60*time.Second, "the cold install in Prometheus", func() bool {
		return query(`sum(npmgate_http_requests_total{route="tarball",status="200"})`) >= float64(tarballs) &&
			query(`sum(npmgate_upstream_requests_total{kind="tarball",result="ok"})`) >= float64(tarballs) &&
			query(`sum(npmgate_cache_lookups_total{tier="disk",result="miss"})`) >= float64(tarballs)
	})
	const hits = `sum(npmgate_cache_lookups_total{tier="disk",result="hit"})`
	const served = `sum(npmgate_http_requests_total{route="tarball",status="200"})`
	upstreamAfterCold, hitsAfterCold, servedAfterCold := query(`sum(npmgate_upstream_requests_total{kind="tarball"})`), query(hits), query(served)
	mustSucceed(t, sb.npm(t, sb.copyProject(t, "warm"), g.URL, "ci"))
	waitUntil(t, 60*time.Second, "the warm install in Prometheus", func() bool {
		return query(served) >= servedAfterCold+float64(tarballs)
	})
	// Every tarball of the warm install came from disk: the hit counter
	// moved exactly as much as the served counter, and the hit ratio over
	// both installs is at least one half.
	if dh, ds := query(hits)-hitsAfterCold, query(served)-servedAfterCold; dh != ds {
		t.Errorf("warm install: %v tarballs served, %v disk hits; want every one a hit", ds, dh)
	}
	if r := query(hits + ` / sum(npmgate_cache_lookups_total{tier="disk"})`); r < 0.5 {
		t.Errorf("disk hit ratio after one cold and one warm install = %.2f, want at least 0.5", r)
	}
	if up := query(`sum(npmgate_upstream_requests_total{kind="tarball"})`); up != upstreamAfterCold {
		t.Errorf("upstream tarball requests went from %v to %v during the warm install, want no change", upstreamAfterCold, up)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitUntil polls ok every 20ms for at most d and reports how long it
// took, or fails the test naming what it waited for.
func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("timed out waiting for %s (%s)", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
