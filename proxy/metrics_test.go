package proxy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

func TestMetrics(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	g.get("/ms", "Accept", corgi)
	g.get("/ms", "Accept", corgi)
	g.get("/ms/-/ms-2.1.3.tgz")
	g.get("/ms/-/ms-2.1.3.tgz")
	g.get("/no-such-package-xyz")
	resp, body := g.get("/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	text := string(body)
	for _, want := range []string{
		`npmgate_http_requests_total{feed="main",method="GET",route="packument",status="200"} 2`,
		`npmgate_http_requests_total{feed="main",method="GET",route="tarball",status="200"} 2`,
		`npmgate_http_requests_total{feed="main",method="GET",route="packument",status="404"} 1`,
		`npmgate_cache_lookups_total{result="hit",tier="memory"} 1`,
		`npmgate_cache_lookups_total{result="miss",tier="memory"} 1`,
		`npmgate_cache_lookups_total{result="hit",tier="disk"} 1`,
		`npmgate_cache_lookups_total{result="miss",tier="disk"} 1`,
		`npmgate_upstream_requests_total{connector="up",kind="packument",result="ok"} 1`,
		`npmgate_upstream_requests_total{connector="up",kind="packument",result="not_found"} 1`,
		`npmgate_upstream_requests_total{connector="up",kind="tarball",result="ok"} 1`,
		`npmgate_upstream_bytes_total{connector="up",kind="tarball"} 2967`,
		`npmgate_http_request_duration_seconds_bucket{route="packument",le="`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Never a package name in a label.
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "npmgate_") && (strings.Contains(line, "ms-2.1.3") || strings.Contains(line, "no-such-package")) {
			t.Errorf("a package name in a metric: %s", line)
		}
	}
}

// TestDashboardUsesExportedMetrics: every metric the Grafana dashboard
// queries is one npmgate exports (a renamed metric would leave an empty
// panel, silently).
func TestDashboardUsesExportedMetrics(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	exported := map[string]bool{}
	descName := regexp.MustCompile(`fqName: "([^"]+)"`)
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range g.srv.metrics.all {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			exported[m[1]] = true
		}
	}
	dash, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "npmgate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`\b(npmgate_[a-z_]+|go_[a-z_]+|process_[a-z_]+)\b`).FindAllString(string(dash), -1)
	if len(used) < 10 {
		t.Fatalf("the dashboard uses only %d metrics", len(used))
	}
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if !exported[name] && !exported[base] {
			t.Errorf("the dashboard uses %s, which npmgate does not export", name)
		}
	}
}
