// Package yamljson converts a YAML document to indented JSON, keeping the
// order of mapping keys, so that the JSON form of the OpenAPI document reads
// (and renders) in the order it was written.
//
// It is used by the generator of pkg/apidocs/openapi.json and by its tests,
// never by the server, which serves the committed JSON.
package yamljson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/mobius-secrets/mobius/pkg/secrets"
	"go.yaml.in/yaml/v4"
)

// Convert returns the JSON form of the single YAML document in src, indented
// by two spaces and ending in a newline. Mapping keys keep their order; keys
// are always strings. Merge keys and non-finite numbers are errors.
func Convert(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("yamljson: parsing: %w", err)
	}
	var buf bytes.Buffer
	if err := write(&buf, &doc, 0); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("yamljson: indenting: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// maxDepth bounds nesting (and alias expansion), so that a hostile document
// cannot exhaust the stack.
const maxDepth = 200

func write(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("yamljson: line %d: nesting deeper than %d", n.Line, maxDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("yamljson: expected one document, found %d nodes", len(n.Content))
		}
		return write(buf, n.Content[0], depth+1)
	case yaml.AliasNode:
		return write(buf, n.Alias, depth+1)
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := write(buf, c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.MappingNode:
		buf.WriteByte('{')
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("yamljson: line %d: mapping key is not a scalar", k.Line)
			}
			if k.ShortTag() == "!!merge" {
				return fmt.Errorf("yamljson: line %d: merge keys are not supported", k.Line)
			}
			if seen[k.Value] {
				return fmt.Errorf("yamljson: line %d: duplicate key %q", k.Line, k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(secrets.AppendJSONString(buf.AvailableBuffer(), k.Value))
			buf.WriteByte(':')
			if err := write(buf, v, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case yaml.ScalarNode:
		return writeScalar(buf, n)
	}
	return fmt.Errorf("yamljson: line %d: unsupported node kind %v", n.Line, n.Kind)
}

func writeScalar(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		buf.WriteString("null")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return fmt.Errorf("yamljson: line %d: %w", n.Line, err)
		}
		buf.WriteString(strconv.FormatBool(b))
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return fmt.Errorf("yamljson: line %d: %w", n.Line, err)
		}
		buf.WriteString(strconv.FormatInt(i, 10))
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return fmt.Errorf("yamljson: line %d: %w", n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("yamljson: line %d: %q has no JSON form", n.Line, n.Value)
		}
		buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	case "!!str", "!!timestamp", "!!binary":
		buf.Write(secrets.AppendJSONString(buf.AvailableBuffer(), n.Value))
	default:
		return fmt.Errorf("yamljson: line %d: unsupported tag %s", n.Line, n.ShortTag())
	}
	return nil
}
