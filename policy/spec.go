package policy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/filter"
)

// compileFilter decodes and compiles the filter: key of connectors.NAME or
// feeds.NAME (section and name); n is the key's node, zero when absent.
func compileFilter(c *config.Config, n *yaml.Node, section, name string) (*filter.Policy, error) {
	spec, err := decodeSpec(n)
	if err != nil {
		return nil, c.YAMLError(err)
	}
	if spec, err = advisoryDefaults(c, spec, section, name); err != nil {
		return nil, err
	}
	p, err := filter.Compile(spec)
	if err != nil {
		return nil, c.At(fmt.Sprintf("%s.%s.filter: %v", section, name, err), section, name, "filter")
	}
	return p, nil
}

// decodeSpec decodes n as config's strict decoder decoded a filter: key
// when it was a filter.Spec field: nil when absent or null, unknown keys
// refused (Node.Decode has no KnownFields, so they are looked for here),
// the error of the first line first.
func decodeSpec(n *yaml.Node) (*filter.Spec, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	var spec *filter.Spec
	err := n.Decode(&spec)
	var te *yaml.TypeError
	if err != nil && !errors.As(err, &te) {
		return nil, err // one the decoder stops at, such as a bad duration
	}
	var msgs []string
	if te != nil {
		msgs = te.Errors
	}
	msgs = append(msgs, unknownFields(n, reflect.TypeFor[filter.Spec]())...)
	if len(msgs) == 0 {
		return spec, nil
	}
	slices.SortStableFunc(msgs, func(a, b string) int { return lineOfMsg(a) - lineOfMsg(b) })
	return nil, &yaml.TypeError{Errors: msgs}
}

// unknownFields lists, in yaml's words, the keys of mapping n that struct
// type t has no field for, and so on down the fields that are structs,
// through aliases and merge keys ("<<").
func unknownFields(n *yaml.Node, t reflect.Type) []string {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name != "-" && f.IsExported() {
			fields[name] = f.Type
		}
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.Tag == "!!merge") {
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				out = append(out, unknownFields(m, t)...)
			}
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			out = append(out, fmt.Sprintf("line %d: field %s not found in type %s", k.Line, k.Value, t))
			continue
		}
		out = append(out, unknownFields(v, ft)...)
	}
	return out
}

// lineOfMsg is the line a yaml error message starts with ("line 12: ...").
func lineOfMsg(msg string) int {
	s, _, _ := strings.Cut(strings.TrimPrefix(msg, "line "), ":")
	n, _ := strconv.Atoi(s)
	return n
}

// advisoryDefaults applies what osv.source means for a filter: with a
// database, a feed's filter blocks malicious packages unless it says
// "malicious: off" (a feed, not a connector, so that one key of the feed
// turns it off); without one, a rule that needs it is an error.
func advisoryDefaults(c *config.Config, spec *filter.Spec, section, name string) (*filter.Spec, error) {
	if c.OSV.Source == "" {
		switch {
		case spec == nil:
		case spec.Malicious == "block":
			return nil, c.At(fmt.Sprintf("%s.%s.filter.malicious: needs an advisory database: set osv.source", section, name), section, name, "filter", "malicious")
		case spec.Vulnerable != nil:
			return nil, c.At(fmt.Sprintf("%s.%s.filter.vulnerable: needs an advisory database: set osv.source", section, name), section, name, "filter", "vulnerable")
		}
		return spec, nil
	}
	if section != "feeds" {
		return spec, nil
	}
	if spec == nil {
		spec = &filter.Spec{}
	}
	if spec.Malicious == "" {
		spec.Malicious = "block"
	}
	return spec, nil
}
