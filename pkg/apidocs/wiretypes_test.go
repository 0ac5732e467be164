package apidocs_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/mobius-secrets/mobius/pkg/api"
)

// wireTypes maps each object schema of the document's components to the
// pkg/api type of that body.
var wireTypes = map[string]reflect.Type{
	"CreateSecretRequest":       reflect.TypeFor[api.CreateSecretRequest](),
	"UpdateSecretRequest":       reflect.TypeFor[api.UpdateSecretRequest](),
	"Secret":                    reflect.TypeFor[api.Secret](),
	"SecretAlias":               reflect.TypeFor[api.SecretAlias](),
	"SecretList":                reflect.TypeFor[api.SecretList](),
	"Version":                   reflect.TypeFor[api.Version](),
	"VersionList":               reflect.TypeFor[api.VersionList](),
	"Resolution":                reflect.TypeFor[api.Resolution](),
	"ResolutionList":            reflect.TypeFor[api.ResolutionList](),
	"ReferenceReport":           reflect.TypeFor[api.ReferenceReport](),
	"ReferenceCheck":            reflect.TypeFor[api.ReferenceCheck](),
	"ConsumerList":              reflect.TypeFor[api.ConsumerList](),
	"VersionConsumers":          reflect.TypeFor[api.VersionConsumers](),
	"Consumer":                  reflect.TypeFor[api.Consumer](),
	"CreateResolveGrantRequest": reflect.TypeFor[api.CreateResolveGrantRequest](),
	"ResolveGrantSecret":        reflect.TypeFor[api.ResolveGrantSecret](),
	"ResolveGrant":              reflect.TypeFor[api.ResolveGrant](),
	"ResolveGrantCreated":       reflect.TypeFor[api.ResolveGrantCreated](),
	"ResolveGrantList":          reflect.TypeFor[api.ResolveGrantList](),
	"CreateApiKeyRequest":       reflect.TypeFor[api.CreateAPIKeyRequest](),
	"ApiKey":                    reflect.TypeFor[api.APIKey](),
	"ApiKeyCreated":             reflect.TypeFor[api.APIKeyCreated](),
	"ApiKeyList":                reflect.TypeFor[api.APIKeyList](),
	"Error":                     reflect.TypeFor[api.Error](),
	"EventList":                 reflect.TypeFor[api.EventList](),
	"Event":                     reflect.TypeFor[api.Event](),
	"RestoreSecretRequest":      reflect.TypeFor[api.RestoreSecretRequest](),
	"TrashList":                 reflect.TypeFor[api.TrashList](),
	"TrashedSecret":             reflect.TypeFor[api.TrashedSecret](),
}

// notBodies are the pkg/api struct types that are no body of their own:
// one nested in a body, one the type of a field.
var notBodies = map[string]string{
	"ErrorBody":    "the object inside Error",
	"NullableTime": "a date field of UpdateSecretRequest",
	"Health":       "the inline schema of GET /healthz",
}

// TestWireTypesMatchTheSchemas keeps pkg/api and the OpenAPI document
// from drifting apart: every object schema of the components is the type
// of a pkg/api body and every body type has a schema; in each, every
// schema property is a field of the same JSON name and every field a
// property, nested objects included; a property the schema requires is
// never omitted by the Go type (no omitempty or omitzero).
func TestWireTypesMatchTheSchemas(t *testing.T) {
	doc := loadSpec(t)

	t.Run("every object schema has a type", func(t *testing.T) {
		for name, ref := range doc.Components.Schemas {
			if len(ref.Value.Properties) > 0 && wireTypes[name] == nil {
				t.Errorf("components.schemas.%s has properties but no pkg/api type in wireTypes", name)
			}
		}
	})
	t.Run("every type has a schema", func(t *testing.T) {
		mapped := map[string]bool{}
		for name, typ := range wireTypes {
			if doc.Components.Schemas[name] == nil {
				t.Errorf("wireTypes names components.schemas.%s, which the document lacks", name)
			}
			mapped[typ.Name()] = true
		}
		for _, name := range apiStructTypes(t) {
			if !mapped[name] && notBodies[name] == "" {
				t.Errorf("api.%s is no schema's type: add its schema to openapi.yaml and wireTypes", name)
			}
		}
	})
	for name, typ := range wireTypes {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			compareSchema(t, name, ref.Value, typ)
		})
	}
	t.Run("Health", func(t *testing.T) {
		op := doc.Paths.Value("/healthz").Get
		s := op.Responses.Value("200").Value.Content.Get("application/json").Schema.Value
		compareSchema(t, "GET /healthz", s, reflect.TypeFor[api.Health]())
	})
}

// apiStructTypes lists the exported struct types declared in pkg/api.
func apiStructTypes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../api/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("reading pkg/api: %v (%d files)", err, len(files))
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, spec := range g.Specs {
				ts := spec.(*ast.TypeSpec)
				if _, ok := ts.Type.(*ast.StructType); ok && ts.Name.IsExported() {
					out = append(out, ts.Name.Name)
				}
			}
		}
	}
	return out
}

// goField is one JSON member of a Go struct.
type goField struct {
	typ     reflect.Type
	omitted bool // omitempty or omitzero
}

// goFields lists the JSON members of struct type t, embedded structs'
// included.
func goFields(t reflect.Type) map[string]goField {
	out := map[string]goField{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			for k, v := range goFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omitted := slices.Contains(strings.Split(opts, ","), "omitempty") || slices.Contains(strings.Split(opts, ","), "omitzero")
		out[name] = goField{typ: f.Type, omitted: omitted}
	}
	return out
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// structOf is the struct a field holds (through pointers, slices and
// maps), or nil for a leaf: a scalar, a time, raw JSON, a map of strings.
func structOf(t reflect.Type) reflect.Type {
	for {
		if t == rawType || t == timeType {
			return nil
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice:
			t = t.Elem()
		case reflect.Struct:
			if t == reflect.TypeFor[api.NullableTime]() {
				return nil
			}
			return t
		default:
			return nil
		}
	}
}

// objectOf is the object schema a property holds (its own, or its array's
// items'), or nil.
func objectOf(s *openapi3.Schema) *openapi3.Schema {
	if s.Items != nil && s.Items.Value != nil {
		s = s.Items.Value
	}
	if len(s.Properties) > 0 {
		return s
	}
	return nil
}

func compareSchema(t *testing.T, at string, s *openapi3.Schema, typ reflect.Type) {
	t.Helper()
	fields := goFields(typ)
	for prop, ref := range s.Properties {
		f, ok := fields[prop]
		if !ok {
			t.Errorf("%s: the schema's property %q has no field in %s", at, prop, typ)
			continue
		}
		if f.omitted && slices.Contains(s.Required, prop) {
			t.Errorf("%s: %q is required, but %s omits it when empty", at, prop, typ)
		}
		sub, st := objectOf(ref.Value), structOf(f.typ)
		switch {
		case sub != nil && st != nil:
			compareSchema(t, at+"."+prop, sub, st)
		case sub != nil:
			t.Errorf("%s: %q is an object in the schema, but %s in %s", at, prop, f.typ, typ)
		case st != nil:
			t.Errorf("%s: %q is %s in %s, but no object in the schema", at, prop, st, typ)
		}
	}
	for name := range fields {
		if s.Properties[name] == nil {
			t.Errorf("%s: %s has the field %q, which the schema lacks", at, typ, name)
		}
	}
}
