package spec

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/imago/imago/internal/contract"
)

// This file decodes spec YAML so that every problem of a file is reported at
// once, each with its field path and line. yaml.v3 stops at the first error an
// Unmarshaler returns and names lines but not fields, so the document is first
// walked against the Go type: what cannot be decoded is reported and dropped,
// and the rest is decoded. Validation then adds its problems (Normalize).

// source is what a spec remembers of the YAML it was parsed from: the line of
// each field and the problems of decoding, which Normalize reports together with
// validation's. Nil for a spec built in code or sent as JSON.
type source struct {
	lines    map[string]int
	problems contract.FieldErrors
	broken   bool // not YAML, or not a mapping: nothing was decoded
}

// line is the line of field, or of its nearest enclosing field in the file
// (analyses.prom for analyses.prom.address when address is left out); 0 when
// neither is in the file.
func (s *source) line(field string) int {
	if s == nil {
		return 0
	}
	for field != "" {
		if l, ok := s.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// report merges the decoding problems with validation's (err), leaving out a
// validation problem about a field that could not be decoded (or one inside or
// around it: it follows from the first), sorted by line. Nil when there is none.
func (s *source) report(err error) error {
	var es contract.FieldErrors
	if err != nil && !errors.As(err, &es) {
		return err
	}
	var out contract.FieldErrors
	if s != nil {
		out = append(out, s.problems...)
	}
	decoded := len(out)
	for _, e := range es {
		if !slices.ContainsFunc(out[:decoded], func(d contract.FieldError) bool { return related(d.Field, e.Field) }) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	out.SortByLine()
	return out
}

// related reports whether one field path is the other or lies inside it.
func related(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return b == a || strings.HasPrefix(b, a) && (b[len(a)] == '.' || b[len(a)] == '[')
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// lineOf splits "yaml: line 3: msg" into 3 and msg.
func lineOf(msg string) (int, string) {
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		l, _ := strconv.Atoi(m[1])
		return l, msg[len(m[0]):]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// decodeYAML decodes the first document of data into v, reporting every problem
// with its field path and line, and what it learned of the file. An empty
// document is the problem empty.
func decodeYAML(data []byte, v any, empty string) *source {
	src := &source{lines: map[string]int{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		src.broken = true
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				l, msg := lineOf(m)
				src.problems = append(src.problems, contract.FieldError{Line: l, Msg: msg})
			}
		} else {
			l, msg := lineOf(err.Error())
			src.problems = contract.FieldErrors{{Line: l, Msg: msg}}
		}
		return src
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		src.broken = true
		src.problems = contract.FieldErrors{{Msg: empty}}
		return src
	}
	fieldLines(&doc, "", src.lines)
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode && root.Tag != "!!null" {
		src.broken = true
		src.problems = contract.FieldErrors{{Line: root.Line, Msg: "want a mapping of fields (service: hello, …), got " + describe(root)}}
		return src
	}
	c := checker{}
	c.check(root, reflect.TypeOf(v).Elem(), "")
	src.problems = c.problems
	if err := root.Decode(v); err != nil {
		// The walk above lets through only what decodes; this is a safety net.
		l, msg := lineOf(err.Error())
		src.problems = append(src.problems, contract.FieldError{Line: l, Msg: msg})
	}
	src.problems.SortByLine()
	return src
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checker walks a YAML tree against a Go type, collecting what would not decode.
type checker struct{ problems contract.FieldErrors }

func (c *checker) add(field string, line int, format string, args ...any) {
	c.problems = append(c.problems, contract.FieldError{Field: field, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// check reports whether n decodes into a t; what does not is reported, and
// dropped from n's mappings and lists so that the rest decodes.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true // the zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) && (n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			_, msg := lineOf(err.Error())
			if strings.Contains(msg, "cannot unmarshal") { // yaml.v3's words, naming Go types
				msg = "want " + want(t) + ", got " + describe(n)
			}
			c.add(path, n.Line, "%s", msg)
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.add(path, n.Line, "want %s, got %s", want(t), describe(n))
			return false
		}
		fields := yamlFields(t)
		c.mapping(n, t, path, func(k *yaml.Node, p string) (reflect.Type, bool) {
			ft, ok := fields[k.Value]
			if !ok {
				c.add(p, k.Line, "unknown field; the fields here are %s", strings.Join(yamlFieldNames(t), ", "))
			}
			return ft, ok
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(path, n.Line, "want %s, got %s", want(t), describe(n))
			return false
		}
		c.mapping(n, t, path, func(*yaml.Node, string) (reflect.Type, bool) { return t.Elem(), true })
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(path, n.Line, "want %s, got %s", want(t), describe(n))
			return false
		}
		for i, item := range n.Content {
			if !c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)) {
				n.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: item.Line, Column: item.Column}
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			c.add(path, n.Line, "want %s, got %s", want(t), describe(n))
			return false
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.add(path, n.Line, "%q is not %s", n.Value, kindWord(t))
			return false
		}
	}
	return true
}

// mapping checks each value of mapping n, a t (its type from field), keeping
// only the pairs that decode; a key given twice is a problem. A merge key (<<:
// *defaults) holds mappings of t itself.
func (c *checker) mapping(n *yaml.Node, t reflect.Type, path string, field func(k *yaml.Node, p string) (reflect.Type, bool)) {
	seen := map[string]int{}
	kept := make([]*yaml.Node, 0, len(n.Content))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					c.check(m, t, path)
				}
			} else {
				c.check(v, t, path)
			}
			kept = append(kept, k, v)
			continue
		}
		p := contract.JoinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			c.add(p, k.Line, "is set twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if ft, ok := field(k, p); ok && c.check(v, ft, p) {
			kept = append(kept, k, v)
		}
	}
	n.Content = kept
}

// yamlFields maps the YAML names of t's fields to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// yamlFieldNames lists t's YAML field names in declaration order.
func yamlFieldNames(t reflect.Type) []string {
	fields := yamlFields(t)
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if _, ok := fields[name]; ok {
			names = append(names, name)
		}
	}
	return names
}

// want names what a t is written as.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		return "a mapping (" + strings.Join(yamlFieldNames(t), ", ") + ": …)"
	case reflect.Map:
		return "a mapping (name: …)"
	case reflect.Slice:
		return "a list"
	}
	return kindWord(t)
}

func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	}
	return "text"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// fieldLines records the line of every field under n by its path (a.b[2].c).
func fieldLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			fieldLines(c, path, lines)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := contract.JoinPath(path, n.Content[i].Value)
			if _, dup := lines[k]; !dup {
				lines[k] = n.Content[i].Line
			}
			fieldLines(n.Content[i+1], k, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			k := fmt.Sprintf("%s[%d]", path, i)
			lines[k] = c.Line
			fieldLines(c, k, lines)
		}
	}
}
