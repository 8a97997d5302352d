package config

import (
	"errors"
	"testing"

	"github.com/npmgate/npmgate/auth"
)

// TestDefaultSubjectsAreAuths: the default access lists are written with
// auth's subjects, which config does not import.
func TestDefaultSubjectsAreAuths(t *testing.T) {
	if subjectAnonymous != auth.SubjectAnonymous || subjectAuthenticated != auth.SubjectAuthenticated {
		t.Errorf("config's subjects %q %q, auth's %q %q", subjectAnonymous, subjectAuthenticated, auth.SubjectAnonymous, auth.SubjectAuthenticated)
	}
}

// TestAt: the errors of checks made after Parse name the file and the
// line of their key, or of the deepest part of it the file has, as
// validation's do.
func TestAt(t *testing.T) {
	c, err := Parse([]byte("connectors:\n  a:\n    url: http://x\n    filter:\n      block: [x]\nfeeds:\n  f:\n    connectors: [a]\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path []string
		want string
	}{
		{[]string{"connectors", "a", "filter"}, "f.yaml:4: msg"},
		{[]string{"feeds", "f", "access", "read"}, "f.yaml:7: msg"},
		{nil, "f.yaml:1: msg"},
	} {
		if err := c.At("msg", tt.path...); err.Error() != tt.want {
			t.Errorf("At(%q) = %q, want %q", tt.path, err, tt.want)
		}
	}
	var ce *Error
	if err := c.YAMLError(errors.New("yaml: unmarshal errors:\n  line 5: field x not found in type filter.Spec")); !errors.As(err, &ce) || err.Error() != "f.yaml:5: field x not found in type filter.Spec" {
		t.Errorf("YAMLError: %v", err)
	}
	if err := (&Config{}).At("msg", "feeds"); err.Error() != "msg" {
		t.Errorf("At of a configuration not parsed from a file: %q", err)
	}
}
