package filter

import (
	"strings"
	"testing"
)

func licRulesFor(t testing.TB, allow, deny []string) *licRules {
	t.Helper()
	r := &licRules{}
	for _, a := range allow {
		lt, err := parseLicenseTerm(a)
		if err != nil {
			t.Fatalf("parseLicenseTerm(%q): %v", a, err)
		}
		r.allow = append(r.allow, lt)
		r.allowText = append(r.allowText, a)
	}
	for _, d := range deny {
		lt, err := parseLicenseTerm(d)
		if err != nil {
			t.Fatalf("parseLicenseTerm(%q): %v", d, err)
		}
		r.deny = append(r.deny, lt)
		r.denyText = append(r.denyText, d)
	}
	return r
}

func TestLicenseEval(t *testing.T) {
	allow := []string{"MIT", "ISC", "Apache-2.0", "BSD-3-Clause", "GPL-2.0-only WITH Classpath-exception-2.0"}
	deny := []string{"GPL-3.0-only", "AGPL-3.0-only"}
	r := licRulesFor(t, allow, deny)
	cases := []struct {
		expr    string
		why     uint8
		culprit string
	}{
		{"MIT", licOK, ""},
		{"mit", licOK, ""},
		{"(MIT)", licOK, ""},
		{"((MIT))", licOK, ""},
		{"(MIT OR Apache-2.0)", licOK, ""},
		{"MIT or Apache-2.0", licOK, ""},
		{"MIT OR GPL-3.0-only", licOK, ""},
		{"GPL-3.0-only OR MIT", licOK, ""},
		{"GPL-3.0-only OR AGPL-3.0-only", licDenied, "GPL-3.0-only"},
		{"Unlisted OR GPL-3.0-only", licNotAllowed, "Unlisted"},
		{"MIT AND ISC", licOK, ""},
		{"MIT AND GPL-3.0-only", licDenied, "GPL-3.0-only"},
		{"MIT AND (ISC OR GPL-3.0-only)", licOK, ""},
		{"MIT AND (WTFPL OR GPL-3.0-only)", licNotAllowed, "WTFPL"},
		{"MIT OR ISC AND GPL-3.0-only", licOK, ""}, // AND binds tighter
		{"(MIT OR ISC) AND GPL-3.0-only", licDenied, "GPL-3.0-only"},
		{"GPL-2.0-only WITH Classpath-exception-2.0", licOK, ""},
		{"GPL-2.0-only", licNotAllowed, "GPL-2.0-only"},
		{"GPL-2.0-only WITH Other-exception", licNotAllowed, "GPL-2.0-only WITH Other-exception"},
		{"GPL-3.0-only WITH GCC-exception-3.1", licDenied, "GPL-3.0-only WITH GCC-exception-3.1"},
		{"GPL-2.0+", licNotAllowed, "GPL-2.0+"},
		{"LicenseRef-acme", licNotAllowed, "LicenseRef-acme"},
		{" MIT ", licOK, ""},
		{"", licUnknown, ""},
		{"   ", licUnknown, ""},
		{"SEE LICENSE IN LICENSE.md", licUnknown, ""},
		{"Public Domain", licUnknown, ""},
		{"MIT/X11", licUnknown, ""},
		{"MIT OR", licUnknown, ""},
		{"OR MIT", licUnknown, ""},
		{"(MIT", licUnknown, ""},
		{"MIT)", licUnknown, ""},
		{"()", licUnknown, ""},
		{"MIT WITH", licUnknown, ""},
		{"MIT WITH (X)", licUnknown, ""},
		{"MIT AND AND ISC", licUnknown, ""},
		{"MIT, ISC", licUnknown, ""},
		{strings.Repeat("(", maxLicenseDepth+1) + "MIT" + strings.Repeat(")", maxLicenseDepth+1), licUnknown, ""},
		{strings.Repeat("(", maxLicenseDepth) + "MIT" + strings.Repeat(")", maxLicenseDepth), licOK, ""},
		{strings.Repeat("MIT OR ", 200) + "MIT", licUnknown, ""}, // too long
	}
	for _, c := range cases {
		res := r.eval(c.expr)
		if res.why != c.why {
			t.Errorf("eval(%q) = %d, want %d", c.expr, res.why, c.why)
			continue
		}
		if c.culprit != "" {
			if got := c.expr[res.from:res.to]; got != c.culprit {
				t.Errorf("eval(%q) culprit %q, want %q", c.expr, got, c.culprit)
			}
		}
	}

	// Without an allow list, everything not denied is permitted.
	r = licRulesFor(t, nil, []string{"GPL-3.0-only"})
	if res := r.eval("WTFPL"); res.why != licOK {
		t.Errorf("no allow list: %d", res.why)
	}
}

// FuzzLicense checks that evaluating any string never panics, that a
// culprit is a span of the expression, and that the evaluation respects the
// algebra of OR and AND.
func FuzzLicense(f *testing.F) {
	for _, s := range []string{
		"MIT", "(MIT OR Apache-2.0)", "MIT AND (ISC OR GPL-3.0-only)", "GPL-2.0-only WITH Classpath-exception-2.0",
		"SEE LICENSE IN LICENSE.md", "", "((((MIT))))", "MIT OR", "(", ")", "mit or isc", "a:b+c.d-e",
	} {
		f.Add(s)
	}
	allow := licRulesFor(f, []string{"MIT", "ISC", "Apache-2.0"}, []string{"GPL-3.0-only"})
	none := &licRules{}
	f.Fuzz(func(t *testing.T, expr string) {
		res := allow.eval(expr)
		if res.why == licDenied || res.why == licNotAllowed {
			if res.from < 0 || res.to > len(expr) || res.from >= res.to {
				t.Fatalf("eval(%q): culprit span %d:%d", expr, res.from, res.to)
			}
			if res.why == licDenied && (res.entry < 0 || res.entry >= len(allow.deny)) {
				t.Fatalf("eval(%q): deny entry %d", expr, res.entry)
			}
		}
		// With no lists, every SPDX expression is permitted.
		if r2 := none.eval(expr); r2.why != licOK && r2.why != licUnknown {
			t.Fatalf("eval(%q) with no lists = %d", expr, r2.why)
		} else if (r2.why == licUnknown) != (res.why == licUnknown) {
			t.Fatalf("eval(%q): parse result depends on the lists", expr)
		}
		if res.why == licUnknown || len(expr) > maxLicenseLen/2-10 {
			return
		}
		ok := res.why == licOK
		// Parentheses change nothing (unless they pass the depth limit).
		if r2 := allow.eval("(" + expr + ")"); r2.why != licUnknown && (r2.why == licOK) != ok {
			t.Fatalf("(%s) differs from %s", expr, expr)
		}
		// X OR X = X, X AND X = X.
		p := "(" + expr + ")"
		if r2 := allow.eval(p + " OR " + p); r2.why != licUnknown && (r2.why == licOK) != ok {
			t.Fatalf("%s OR itself differs", expr)
		}
		if r2 := allow.eval(p + " AND " + p); r2.why != licUnknown && (r2.why == licOK) != ok {
			t.Fatalf("%s AND itself differs", expr)
		}
		// X OR MIT is permitted; X AND GPL-3.0-only is not.
		if r2 := allow.eval(p + " OR MIT"); r2.why != licUnknown && r2.why != licOK {
			t.Fatalf("%s OR MIT not permitted", expr)
		}
		if r2 := allow.eval(p + " AND GPL-3.0-only"); r2.why != licUnknown && r2.why == licOK {
			t.Fatalf("%s AND GPL-3.0-only permitted", expr)
		}
	})
}
