package osv

import (
	"math"
	"strings"

	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// Severity is an advisory's level, in the words npm prints. Levels are
// ordered: a rule "min_severity: high" keeps what is below High.
type Severity uint8

const (
	// SeverityUnknown is a record with neither a usable vector nor a
	// level of its own.
	SeverityUnknown Severity = iota
	Low
	Moderate
	High
	Critical
)

var severityNames = [...]string{"unknown", "low", "moderate", "high", "critical"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "unknown"
}

// ParseSeverity reads a level as a configuration or a database writes it:
// low, moderate (or medium), high, critical, in any case.
func ParseSeverity(s string) (Severity, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low":
		return Low, true
	case "moderate", "medium":
		return Moderate, true
	case "high":
		return High, true
	case "critical":
		return Critical, true
	}
	return SeverityUnknown, false
}

// SeverityOfScore is the level of a CVSS base score (the ranges of CVSS
// v3.1 and v4.0: 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0–10
// critical); a score of 0 ("none") is unknown.
func SeverityOfScore(score float64) Severity {
	switch {
	case score >= 9.0:
		return Critical
	case score >= 7.0:
		return High
	case score >= 4.0:
		return Moderate
	case score > 0:
		return Low
	}
	return SeverityUnknown
}

// CVSSScore is the base score of a CVSS v3.0, v3.1 or v4.0 vector;
// ok is false for any other string.
func CVSSScore(vector string) (score float64, ok bool) {
	switch {
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		c, err := gocvss31.ParseVector(vector)
		if err != nil {
			return 0, false
		}
		return c.BaseScore(), true
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		c, err := gocvss30.ParseVector(vector)
		if err != nil {
			return 0, false
		}
		return c.BaseScore(), true
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		c, err := gocvss40.ParseVector(vector)
		if err != nil {
			return 0, false
		}
		// Score can be off by a float's last bit; CVSS scores have one
		// decimal.
		return math.Round(c.Score()*10) / 10, true
	}
	return 0, false
}

// severityOf decides a record's level: critical for a malicious package;
// else the score of its CVSS v3 vector, else of its v4 one; else the
// database's own level (GHSA's LOW/MODERATE/HIGH/CRITICAL). Score and
// vector are those of the vector used, or zero.
func severityOf(sev []rawSeverity, own string, malicious bool) (Severity, float64, string) {
	level, score, vector := SeverityUnknown, 0.0, ""
	for _, want := range []string{"CVSS_V3", "CVSS_V4"} {
		for _, s := range sev {
			if s.Type != want || len(s.Score) > maxVectorLen {
				continue
			}
			if sc, ok := CVSSScore(s.Score); ok {
				level, score, vector = SeverityOfScore(sc), sc, s.Score
				break
			}
		}
		if vector != "" {
			break
		}
	}
	if level == SeverityUnknown {
		level, _ = ParseSeverity(own)
	}
	if malicious {
		level = Critical
	}
	return level, score, vector
}
