package httpapi

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// jsonNames lists the JSON member names of struct type t, embedded
// structs' included.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			out = append(out, jsonNames(f.Type)...)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// The bodies the server reads member by member take exactly the members of
// the pkg/api request types the client sends (whose fields the apidocs
// test keeps equal to the OpenAPI schemas).
func TestBodiesMirrorTheAPITypes(t *testing.T) {
	for _, c := range []struct {
		name       string
		body, wire any
	}{
		{"create a secret", createSecretBody{}, api.CreateSecretRequest{}},
		{"update a secret", updateSecretBody{}, api.UpdateSecretRequest{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, want := jsonNames(reflect.TypeOf(c.body)), jsonNames(reflect.TypeOf(c.wire))
			if !slices.Equal(got, want) {
				t.Errorf("%T reads %v; %T has %v", c.body, got, c.wire, want)
			}
		})
	}
}

// The enumerations of pkg/api are the domain's.
func TestAPIConstantsAreTheDomains(t *testing.T) {
	states := []string{api.StateEnabled, api.StatePending, api.StateDisabled, api.StateDestroyed}
	domain := []string{string(secrets.Enabled), string(secrets.Pending), string(secrets.Disabled), string(secrets.Destroyed)}
	if !slices.Equal(states, domain) {
		t.Errorf("api states %v, the domain's %v", states, domain)
	}
	scopes := []string{api.ScopeRead, api.ScopeWrite, api.ScopeKeyAdmin, api.ScopeResolve}
	if !slices.Equal(scopes, secrets.AllScopes) {
		t.Errorf("api scopes %v, the domain's %v", scopes, secrets.AllScopes)
	}
}
