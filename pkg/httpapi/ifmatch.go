package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// ifMatch turns the If-Match header into the revision a write is
// conditional on: nil when absent or "*"; PreconditionFailed when no ETag
// listed is the secret's current one. ETags compare strongly: a weak ETag
// never matches.
func (s *server) ifMatch(r *http.Request, c *call, ref string) (*int64, error) {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return nil, nil
	}
	var revs []int64
	for _, part := range strings.Split(strings.Join(values, ","), ",") {
		tag := strings.TrimSpace(part)
		if tag == "*" {
			return nil, nil
		}
		weak := strings.HasPrefix(tag, "W/")
		tag = strings.TrimPrefix(tag, "W/")
		if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' || strings.Contains(tag[1:len(tag)-1], `"`) {
			return nil, secrets.FieldErrorf(secrets.Invalid, "If-Match", `If-Match must list ETags, such as "7"`)
		}
		if weak {
			continue
		}
		if n, err := strconv.ParseInt(tag[1:len(tag)-1], 10, 64); err == nil && n > 0 {
			revs = append(revs, n)
		}
	}
	if len(revs) == 1 {
		return &revs[0], nil
	}
	// Several ETags, or none that can match: compare with the secret as it
	// is; the write is then conditional on that revision.
	sec, err := s.svc.GetSecret(r.Context(), c.project, ref)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(revs, sec.Revision) {
		return nil, secrets.Errorf(secrets.PreconditionFailed, "secret %q has changed since the ETag given in If-Match", sec.Name)
	}
	return &sec.Revision, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}
