package npm

import "testing"

func TestLandsAt(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"package/package.json", true},
		{"x/package.json", true},
		{"./package/package.json", true},
		{"package//package.json", true},
		{"package/./package.json", true},
		{"/package/package.json", true},
		{"../package.json", true}, // node-tar strips "..", then writes package.json
		{"package/a/../package.json", true},
		{"package/PACKAGE.JSON", true},
		{`package\package.json`, true},
		{"package/package.json ", true},
		{"package/package.json/", true},
		{"package.json", false},
		{"package/lib/package.json", false},
		{"package/node_modules/a/package.json", false},
		{"package/package.json5", false},
		{"package/package.jsonx", false},
	} {
		if got := landsAt(c.name, "package.json"); got != c.want {
			t.Errorf("landsAt(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
