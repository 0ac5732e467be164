package httpapi

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mobius-secrets/mobius/internal/strictjson"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// errTooManyRefs ends a walk that finds more references than resolve
// takes.
var errTooManyRefs = errors.New("too many references")

// checkReferences answers POST /v1/projects/{project}/references/check:
// the body is any JSON document (a loop's parameters); every reference in
// its strings, and every object key that holds one, is reported with what
// it would resolve to now, from metadata only. It reads no value and
// writes nothing. The document is read by the same rules as a resolve
// input: strictly, at most secrets.MaxReferenceDepth deep and
// secrets.MaxReferences references.
func (s *server) checkReferences(r *http.Request, c *call) (reply, error) {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return reply{}, secrets.Errorf(secrets.Invalid, "the request body is empty; send the JSON document to check (a loop's parameters)")
	}
	type found struct {
		at         jsontext.Pointer
		ref        *secrets.Ref
		text       string // as written; shortened if malformed
		problem    string
		inName     bool
		wellFormed bool
	}
	var all []found
	count := 0
	onString := func(at jsontext.Pointer, str string) error {
		t, malformed, over := secrets.ParseReferencesUpTo(str, secrets.MaxReferences-count)
		if over {
			return errTooManyRefs
		}
		for _, ref := range t.Refs() {
			all = append(all, found{at: at, ref: &ref, text: ref.String(), wellFormed: true})
		}
		for _, m := range malformed {
			all = append(all, found{at: at, text: m.Text, problem: "malformed: " + m.Reason})
		}
		count += len(t.Refs()) + len(malformed)
		return nil
	}
	onName := func(at jsontext.Pointer, name string) error {
		if secrets.HasReference(name) {
			if count++; count > secrets.MaxReferences {
				return errTooManyRefs
			}
			all = append(all, found{at: at, inName: true, problem: "an object key holds a reference: keys are never substituted, and resolve refuses the document"})
		}
		return nil
	}
	if err := strictjson.Walk(c.body, secrets.MaxReferenceDepth, onString, onName); err != nil {
		var e *strictjson.Error
		switch {
		case errors.Is(err, errTooManyRefs):
			return reply{}, secrets.Errorf(secrets.Invalid, "the document holds more than %d secret references, more than resolve takes", secrets.MaxReferences)
		case errors.As(err, &e) && e.Kind == strictjson.TooDeep:
			return reply{}, secrets.Errorf(secrets.Invalid, "the document is nested more than %d levels deep, more than resolve takes", secrets.MaxReferenceDepth)
		case errors.As(err, &e):
			return reply{}, secrets.Errorf(secrets.Invalid, "the document is not strict JSON: %s", secrets.Shorten(e.Error(), 300))
		}
		return reply{}, err
	}
	var refs []secrets.Ref
	for _, f := range all {
		if f.ref != nil {
			refs = append(refs, *f.ref)
		}
	}
	checks, err := s.svc.CheckReferences(r.Context(), c.project, refs)
	if err != nil {
		return reply{}, err
	}
	out := api.ReferenceReport{OK: true, References: make([]api.ReferenceCheck, 0, len(all))}
	for _, f := range all {
		j := api.ReferenceCheck{At: string(f.at), InKey: f.inName, Reference: f.text, WellFormed: f.wellFormed}
		if f.inName {
			j.Reference = secrets.Shorten(f.at.LastToken(), 120)
		}
		problem := f.problem
		if f.ref != nil {
			ck := checks[*f.ref]
			j.SecretExists = ck.SecretID != ""
			j.SecretID = stringOrNil(ck.SecretID)
			j.KeyFound = ck.KeyFound
			j.Warning = stringOrNil(ck.Warning)
			if ck.Version != 0 {
				n, st, sum := ck.Version, string(ck.State), ck.SHA256
				j.Version, j.State, j.SHA256 = &n, &st, &sum
			}
			problem = ck.Problem
		}
		if problem != "" {
			out.OK = false
			out.Problems++
			j.Problem = &problem
		}
		out.References = append(out.References, j)
	}
	return reply{status: http.StatusOK, body: out}, nil
}

func stringOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
