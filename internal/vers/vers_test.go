package vers

import (
	"cmp"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		in                  string
		major, minor, patch uint64
		pre, build          string
	}{
		{"0.0.0", 0, 0, 0, "", ""},
		{"1.2.3", 1, 2, 3, "", ""},
		{"10.20.30", 10, 20, 30, "", ""},
		{"1.0.0-alpha", 1, 0, 0, "alpha", ""},
		{"1.0.0-alpha.1", 1, 0, 0, "alpha.1", ""},
		{"1.0.0-0.3.7", 1, 0, 0, "0.3.7", ""},
		{"1.0.0-x.7.z.92", 1, 0, 0, "x.7.z.92", ""},
		{"1.0.0-x-y-z.--", 1, 0, 0, "x-y-z.--", ""},
		{"1.0.0+build.1", 1, 0, 0, "", "build.1"},
		{"1.0.0+001", 1, 0, 0, "", "001"},
		{"1.0.0-beta+exp.sha.5114f85", 1, 0, 0, "beta", "exp.sha.5114f85"},
		{"1.0.0+a-b", 1, 0, 0, "", "a-b"},
		{"18446744073709551615.0.0", 18446744073709551615, 0, 0, "", ""},
	}
	for _, c := range good {
		v, ok := Parse(c.in)
		if !ok || v.Major != c.major || v.Minor != c.minor || v.Patch != c.patch || v.Pre != c.pre || v.Build != c.build {
			t.Errorf("Parse(%q) = %+v, %v", c.in, v, ok)
		}
	}
	bad := []string{
		"", "1", "1.2", "1.2.3.4", "v1.2.3", "=1.2.3", " 1.2.3", "1.2.3 ", "01.2.3", "1.02.3", "1.2.03",
		"1.2.3-", "1.2.3+", "1.2.3-01", "1.2.3-a..b", "1.2.3+a..b", "1.2.3-a_b", "1.2.3+a+b",
		"1.2-3.4", "-1.2.3", "1..3", "a.b.c", "latest", "18446744073709551616.0.0", "1.2.3-ä",
		"1.2.3\n",
	}
	for _, s := range bad {
		if v, ok := Parse(s); ok {
			t.Errorf("Parse(%q) = %+v, want invalid", s, v)
		}
	}
	long := "1.2.3-" + string(make([]byte, 0)) + repeat("a", 251)
	if _, ok := Parse(long); ok {
		t.Errorf("parseVersion of %d bytes accepted", len(long))
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func TestCompare(t *testing.T) {
	// Ascending by precedence (semver.org §11).
	order := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0",
	}
	for i := range order {
		for j := range order {
			a, _ := Parse(order[i])
			b, _ := Parse(order[j])
			want := cmp.Compare(i, j)
			if got := Compare(&a, &b); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := Parse("1.0.0+build.1")
	b, _ := Parse("1.0.0")
	if Compare(&a, &b) != 0 {
		t.Error("build metadata must not count")
	}
}
