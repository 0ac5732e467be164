package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// visibility says what a route's path names, so that a request for another
// project gets the very 404 a missing object of that kind would.
type visibility int

const (
	inProject visibility = iota // a collection of the project
	inSecret                    // a secret, or something under it
	inAPIKey                    // one API key
	inGrant                     // one resolve grant
	inTrash                     // a secret in the trash, by ID
)

// call is an authorized request: the key belongs to project and holds the
// route's scope.
type call struct {
	project string
	key     *secrets.APIKey
	body    []byte // the request body, for routes that take one
}

// authorize checks, in this order: credentials (401), that the key's
// project is the path's (404, worded exactly as for a missing object, so
// nothing tells whether the other project or its object exists), and the
// scope (403).
func (s *server) authorize(r *http.Request, info *reqInfo, scope string, vis visibility) (*call, error) {
	project := r.PathValue("project")
	info.project = secrets.Shorten(project, secrets.MaxProjectLen)
	h := r.Header.Get("Authorization")
	token, ok := bearer(h)
	switch {
	case !ok && strings.TrimSpace(h) == "":
		return nil, secrets.Errorf(secrets.Unauthorized, "missing API key: send the header Authorization: Bearer <key>")
	case !ok: // never quoted: it may hold a credential
		return nil, secrets.Errorf(secrets.Unauthorized, "the Authorization header must be \"Bearer <key>\" (an API key of the project)")
	}
	key, err := s.svc.Authenticate(r.Context(), token)
	if err != nil {
		return nil, err
	}
	info.keyID = key.ID
	if key.Project != project {
		return nil, notVisible(r, vis)
	}
	if !key.HasScope(scope) {
		return nil, secrets.Errorf(secrets.Forbidden, "the API key lacks the scope %s", scope)
	}
	return &call{project: project, key: key}, nil
}

// notVisible is the 404 for a path in a project the caller cannot see. Its
// message is the one the service gives when the object is missing.
func notVisible(r *http.Request, vis visibility) error {
	project := secrets.Shorten(r.PathValue("project"), secrets.MaxProjectLen)
	switch vis {
	case inSecret:
		return secrets.Errorf(secrets.NotFound, "secret %q not found in project %q", secrets.Shorten(r.PathValue("secret"), 140), project)
	case inAPIKey:
		return secrets.Errorf(secrets.NotFound, "API key %q not found in project %q", secrets.Shorten(r.PathValue("id"), 40), project)
	case inGrant:
		return secrets.Errorf(secrets.NotFound, "resolve grant %q not found in project %q", secrets.Shorten(r.PathValue("id"), 40), project)
	case inTrash:
		return secrets.Errorf(secrets.NotFound, "secret %q not found in the trash of project %q", secrets.Shorten(r.PathValue("id"), 40), project)
	default:
		return secrets.Errorf(secrets.NotFound, "project %q not found", project)
	}
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// etag is the strong ETag of a revision: the number in quotes.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }
