package source

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a source's state, read at each scrape:
//
//	npmgate_osv_records{kind="vulnerability"|"malicious"}   advisories served
//	npmgate_osv_skipped_records                              records of the export not kept
//	npmgate_osv_loaded                                       1 when a database is served
//	npmgate_osv_last_success_timestamp_seconds               last refresh that replaced or confirmed it
//	npmgate_osv_refreshes_total{result="ok"|"not_modified"|"error"}
//
// An alert on time() - npmgate_osv_last_success_timestamp_seconds says
// the database is going stale while the last good copy is still served.
func (s *Source) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Source }

var (
	descRecords  = prometheus.NewDesc("npmgate_osv_records", "Advisories in the OSV database served, by kind.", []string{"kind"}, nil)
	descSkipped  = prometheus.NewDesc("npmgate_osv_skipped_records", "Records of the loaded export that were not kept (invalid, duplicate keys, too large, withdrawn, other ecosystems).", nil, nil)
	descLoaded   = prometheus.NewDesc("npmgate_osv_loaded", "1 when an OSV database is served.", nil, nil)
	descSuccess  = prometheus.NewDesc("npmgate_osv_last_success_timestamp_seconds", "When a refresh last replaced or confirmed the database (0: never).", nil, nil)
	descRefreshs = prometheus.NewDesc("npmgate_osv_refreshes_total", "Refreshes of the OSV database by result.", []string{"result"}, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descSkipped, descLoaded, descSuccess, descRefreshs} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	loaded, success := 0.0, 0.0
	if st.Loaded {
		loaded = 1
	}
	if !st.LastSuccess.IsZero() {
		success = float64(st.LastSuccess.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descRecords, prometheus.GaugeValue, float64(st.Records-st.Malicious), "vulnerability")
	ch <- prometheus.MustNewConstMetric(descRecords, prometheus.GaugeValue, float64(st.Malicious), "malicious")
	ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.GaugeValue, float64(st.Skipped))
	ch <- prometheus.MustNewConstMetric(descLoaded, prometheus.GaugeValue, loaded)
	ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, success)
	ch <- prometheus.MustNewConstMetric(descRefreshs, prometheus.CounterValue, float64(c.s.refreshes[resultOK].Load()), "ok")
	ch <- prometheus.MustNewConstMetric(descRefreshs, prometheus.CounterValue, float64(c.s.refreshes[resultNotModified].Load()), "not_modified")
	ch <- prometheus.MustNewConstMetric(descRefreshs, prometheus.CounterValue, float64(c.s.refreshes[resultError].Load()), "error")
}

// Ready is the /readyz line of a source: ready once a database is
// served (an old one after failed refreshes is still ready: it says so).
func (st Status) Ready() (bool, string) {
	if !st.Loaded {
		msg := "osv: no database yet"
		if st.LastError != "" {
			msg += ": " + st.LastError
		}
		return false, msg
	}
	msg := fmt.Sprintf("osv: %d advisories (%d malicious) from %s, loaded %s", st.Records, st.Malicious, st.Location, st.LoadedAt.UTC().Format(time.RFC3339))
	if st.FromCache {
		msg += " from the cache"
	}
	if st.LastError != "" {
		msg += "; last refresh failed: " + st.LastError
	}
	return true, msg
}
