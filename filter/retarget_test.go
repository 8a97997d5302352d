package filter

import "testing"

func TestRetargetTag(t *testing.T) {
	cases := []struct {
		desc    string
		target  string
		allowed []string
		want    string
		ok      bool
	}{
		{"target still allowed stays", "2.0.0", []string{"1.0.0", "2.0.0"}, "2.0.0", true},
		{"latest moves to highest allowed stable below", "5.6.1", []string{"5.5.0", "5.6.0", "4.9.9", "5.3.0"}, "5.6.0", true},
		{"never to a prerelease", "5.6.1", []string{"5.6.0", "5.6.1-rc.1", "5.7.0-beta"}, "5.6.0", true},
		{"never above the target", "2.0.0", []string{"1.9.0", "2.0.1", "3.0.0"}, "1.9.0", true},
		{"dropped when none", "1.0.0", []string{"1.0.1", "2.0.0"}, "", false},
		{"dropped when nothing is allowed", "1.0.0", nil, "", false},
		{"dropped when only prereleases", "1.0.0", []string{"1.0.0-rc.1", "0.9.0-beta"}, "", false},
		{"non-semver allowed ignored", "2.0.0", []string{"latest", "v1.9.0", "1.8.0", "1.9", ""}, "1.8.0", true},
		{"non-semver target dropped", "garbage", []string{"1.0.0"}, "", false},
		{"non-semver target still allowed stays", "garbage", []string{"garbage", "1.0.0"}, "garbage", true},
		{"build metadata compares by precedence", "1.0.1", []string{"1.0.0+build.9", "0.9.0"}, "1.0.0+build.9", true},
		{"equal to target with other build", "1.0.0+b", []string{"1.0.0+a", "0.9.0"}, "1.0.0+a", true},
		{"ties broken by the smallest string", "2.0.0", []string{"1.0.0+z", "1.0.0", "1.0.0+a"}, "1.0.0", true},
		{"numeric order, not string order", "10.0.0", []string{"9.0.0", "10.0.0-rc.1", "2.0.0"}, "9.0.0", true},
		{"prerelease target: earlier build of the same release", "2.0.0-beta.3", []string{"2.0.0-beta.2", "2.0.0-alpha.9", "1.9.0"}, "2.0.0-beta.2", true},
		{"prerelease target: not a later build", "2.0.0-beta.3", []string{"2.0.0-beta.4", "1.9.0"}, "1.9.0", true},
		{"prerelease target: not another release's prerelease", "2.0.0-beta.3", []string{"1.9.0-rc.1", "1.8.0"}, "1.8.0", true},
		{"prerelease target: stable below", "2.0.0-beta.3", []string{"1.9.0", "2.0.0"}, "1.9.0", true},
		{"prerelease target: none", "0.1.0-beta.3", []string{"0.1.0", "0.2.0"}, "", false},
	}
	for _, c := range cases {
		got, ok := RetargetTag(c.target, c.allowed)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: RetargetTag(%q, %q) = %q, %v; want %q, %v", c.desc, c.target, c.allowed, got, ok, c.want, c.ok)
		}
	}
}
