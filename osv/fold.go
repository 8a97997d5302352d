package osv

import (
	"encoding/json"
	"strings"
)

// fieldNames are the member names the record decoder reads, exactly and
// folded.
var fieldNames, foldedNames = map[string]bool{}, map[string]bool{}

func init() {
	for _, n := range []string{"id", "aliases", "summary", "details", "modified", "published", "withdrawn",
		"severity", "affected", "references", "database_specific", "type", "score", "package", "ecosystem",
		"name", "ranges", "versions", "events", "introduced", "fixed", "last_affected", "limit", "url",
		"cwe_ids", "malicious-packages-origins", "cwes", "cweId"} {
		fieldNames[n], foldedNames[fold(n)] = true, true
	}
}

// fold maps a name to what case-insensitive matching compares: upper
// then lower case sends the Kelvin sign and the long s to k and s too.
func fold(s string) string { return strings.ToLower(strings.ToUpper(s)) }

// foldedFieldName finds a member name that encoding/json, which matches
// names to fields ignoring case, reads as one of the record's fields
// while it is not that field's name: "ID" is the id to Go and another
// member to JavaScript, so a record with it has two readings, like one
// with a duplicate key. data is valid JSON. Names of lowercase ASCII,
// nearly all of them, are checked without allocating.
func foldedFieldName(data []byte) (string, bool) {
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		start, escaped := i+1, false
		for i++; i < len(data) && data[i] != '"'; i++ {
			if data[i] == '\\' {
				escaped = true
				i++
			}
		}
		raw := data[start:i]
		j := i + 1
		for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
			j++
		}
		if j >= len(data) || data[j] != ':' || plainLower(raw) && !escaped {
			continue // a string value, or a name that is exactly a field's or none
		}
		name := string(raw)
		if escaped {
			var s string
			if json.Unmarshal(data[start-1:i+1], &s) != nil {
				continue
			}
			name = s
		}
		if foldedNames[fold(name)] && !fieldNames[name] {
			return name, true
		}
	}
	return "", false
}

// plainLower reports whether b has only bytes case folding leaves alone
// and no capital: such a name is a field's name exactly or none.
func plainLower(b []byte) bool {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' || c >= 0x80 {
			return false
		}
	}
	return true
}
