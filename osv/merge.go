package osv

import (
	"encoding/json"
	"errors"
	"strings"
)

// The merges of "audit: local+connector": the answer of the database and
// the connector's answer to the same request, as one. An advisory both
// name (the same GHSA page, or the same GHSA id) is listed once, as the
// connector has it; everything the connector sends is kept as it is.

// ErrUpstreamAudit is a connector answer that cannot be merged; the
// caller then answers with the local one alone (and says so in its log).
var ErrUpstreamAudit = errors.New("osv: the connector's audit answer is not an audit answer")

// advisoryKey identifies an advisory across sources: the GHSA id in its
// URL or its own field, else its URL.
func advisoryKey(url, ghsa string) string {
	if ghsa != "" {
		return strings.ToUpper(ghsa)
	}
	if i := strings.LastIndex(url, "/GHSA-"); i >= 0 {
		return strings.ToUpper(url[i+1:])
	}
	return url
}

// MergeBulk merges two bulk answers ({name: [advisory]}).
func MergeBulk(local, upstream []byte) ([]byte, error) {
	var mine map[string][]json.RawMessage
	if err := json.Unmarshal(local, &mine); err != nil {
		return nil, err
	}
	var theirs map[string][]json.RawMessage
	if err := json.Unmarshal(upstream, &theirs); err != nil || theirs == nil {
		return nil, ErrUpstreamAudit
	}
	for name, advs := range mine {
		seen := map[string]bool{}
		for _, raw := range theirs[name] {
			var a struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(raw, &a) != nil {
				return nil, ErrUpstreamAudit
			}
			seen[advisoryKey(a.URL, "")] = true
		}
		for _, raw := range advs {
			var a struct {
				URL string `json:"url"`
			}
			_ = json.Unmarshal(raw, &a)
			if !seen[advisoryKey(a.URL, "")] {
				theirs[name] = append(theirs[name], raw)
			}
		}
	}
	return marshal(theirs)
}

// upstreamV1 is the connector's v1 report, its advisories kept raw.
type upstreamV1 struct {
	Actions    []json.RawMessage          `json:"actions"`
	Advisories map[string]json.RawMessage `json:"advisories"`
	Muted      []json.RawMessage          `json:"muted"`
	Metadata   map[string]json.RawMessage `json:"metadata"`
}

// MergeV1 merges two v1 reports: advisories and actions of both (the
// local ones the connector also lists left out), vulnerabilities summed
// over what is listed, the connector's dependency counts (it counted
// the same tree).
func MergeV1(local, upstream []byte) ([]byte, error) {
	var mine V1Report
	if err := json.Unmarshal(local, &mine); err != nil {
		return nil, err
	}
	var theirs upstreamV1
	if err := json.Unmarshal(upstream, &theirs); err != nil || theirs.Advisories == nil || theirs.Metadata == nil {
		return nil, ErrUpstreamAudit
	}
	var counts map[string]int
	if json.Unmarshal(theirs.Metadata["vulnerabilities"], &counts) != nil || counts == nil {
		return nil, ErrUpstreamAudit
	}
	seen := map[string]bool{}
	for _, raw := range theirs.Advisories {
		var a struct {
			URL  string `json:"url"`
			GHSA string `json:"github_advisory_id"`
		}
		if json.Unmarshal(raw, &a) != nil {
			return nil, ErrUpstreamAudit
		}
		seen[advisoryKey(a.URL, a.GHSA)] = true
	}
	dropped := map[int64]bool{}
	for key, adv := range mine.Advisories {
		if seen[advisoryKey(adv.URL, adv.GitHubAdvisoryID)] {
			dropped[adv.ID] = true
			continue
		}
		raw, _ := marshal(adv)
		theirs.Advisories[key] = raw
	}
	for _, act := range mine.Actions {
		if len(act.Resolve) == 0 || dropped[act.Resolve[0].ID] {
			continue
		}
		for range act.Resolve {
			counts[mine.Advisories[idKey(act.Resolve[0].ID)].Severity]++
		}
		raw, _ := marshal(act)
		theirs.Actions = append(theirs.Actions, raw)
	}
	theirs.Metadata["vulnerabilities"], _ = marshal(counts)
	if theirs.Actions == nil {
		theirs.Actions = []json.RawMessage{}
	}
	if theirs.Muted == nil {
		theirs.Muted = []json.RawMessage{}
	}
	return marshal(theirs)
}
