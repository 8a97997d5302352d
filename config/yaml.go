package config

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a configuration error, with the line it concerns when known.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// At is an error msg at the line of the key at path (or of the deepest
// part of it the file has), naming the file, as validation's errors are:
// for the checks of a section made after Parse (the policy package's).
func (c *Config) At(msg string, path ...string) error {
	e := &Error{File: c.file, Msg: msg}
	if c.root != nil {
		e.Line = lineOf(c.root, path...)
	}
	return e
}

// YAMLError is an error of decoding a node of the file (yaml's "line N:
// msg") as Parse reports one: an *Error naming the file and the line.
func (c *Config) YAMLError(err error) error {
	return yamlError(c.file, err)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} with the environment variable's value, so
// secrets stay out of the file. An unset variable is an error; a plain
// "$word" (as in access lists) and anything in a comment are left alone.
func expandEnv(data []byte, file string) ([]byte, error) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var out bytes.Buffer
	for i, line := range lines {
		code, comment := splitComment(line)
		var missing string
		code = envRef.ReplaceAllFunc(code, func(m []byte) []byte {
			name := string(m[2 : len(m)-1])
			v, ok := os.LookupEnv(name)
			if !ok && missing == "" {
				missing = name
			}
			return []byte(v)
		})
		if missing != "" {
			return nil, &Error{File: file, Line: i + 1, Msg: fmt.Sprintf("environment variable %s is not set", missing)}
		}
		out.Write(code)
		out.Write(comment)
	}
	return out.Bytes(), nil
}

// splitComment cuts a YAML line at its comment: a '#' at the start or after
// a space, outside quotes.
func splitComment(line []byte) (code, comment []byte) {
	var quote byte
	for i, c := range line {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i], line[i:]
		}
	}
	return line, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

func yamlError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		text := strings.ReplaceAll(m[2], "type config.", "")
		return &Error{File: file, Line: line, Msg: text}
	}
	return &Error{File: file, Msg: msg}
}

// lineOf finds the line of the node at a path of mapping keys, or of the
// deepest one that exists.
func lineOf(root *yaml.Node, path ...string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, key := range path {
		if n.Kind == yaml.SequenceNode {
			// An index into a list (publishing.trusted[2]).
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				break
			}
			n = n.Content[i]
			line = n.Line
			continue
		}
		if n.Kind != yaml.MappingNode {
			break
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return line
}
