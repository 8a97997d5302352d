package ui

import (
	"sort"
	"testing"
	"time"
)

// TestVersionsInSemverOrder: a backport published after the newest release
// is listed with its line, not above it; keys that are not semver come
// last.
func TestVersionsInSemverOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := []versionRow{
		{Version: "1.9.9", at: t0.Add(3 * time.Hour)}, // the backport, newest by time
		{Version: "latest-build", at: t0.Add(4 * time.Hour)},
		{Version: "2.0.0", at: t0.Add(2 * time.Hour)},
		{Version: "3.0.0-rc.1", at: t0.Add(time.Hour)},
		{Version: "2.0.0-beta.1", at: t0},
	}
	sort.SliceStable(rows, func(i, j int) bool { return versionBefore(&rows[i], &rows[j]) })
	want := []string{"3.0.0-rc.1", "2.0.0", "2.0.0-beta.1", "1.9.9", "latest-build"}
	for i, w := range want {
		if rows[i].Version != w {
			t.Fatalf("order %v, want %v", versionsOf(rows), want)
		}
	}
}

func versionsOf(rows []versionRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Version)
	}
	return out
}
