package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Kinds of list a page token may continue.
const (
	pageSecrets     = "secrets"
	pageVersions    = "versions"
	pageResolutions = "resolutions"
	pageGrants      = "grants"
	pageTrash       = "trash"
)

const maxPageToken = 2048

// pageBinding is what a page token is valid for: one kind of list, of one
// project, of one secret (for versions and resolutions), under one prefix.
type pageBinding struct {
	kind, project, secretID, prefix string
}

// newPageToken returns an opaque token: base64url of the binding and the
// cursor, with an HMAC-SHA256 tag under the server's key.
// The key is the one parsePageToken loaded, which every list calls first.
func (s *server) newPageToken(b pageBinding, cursor string) string {
	payload, _ := json.Marshal([]string{"v1", b.kind, b.project, b.secretID, b.prefix, cursor})
	mac := hmac.New(sha256.New, *s.tokKey.Load())
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(payload))
}

// parsePageToken returns the cursor in token ("" for no token). A token that
// is forged, damaged, or made for another list is Invalid, field page_token.
// It loads the signing key first, if it is not loaded yet.
func (s *server) parsePageToken(ctx context.Context, token string, b pageBinding) (string, error) {
	key, err := s.pageKey(ctx)
	if err != nil {
		return "", err
	}
	if token == "" {
		return "", nil
	}
	bad := secrets.FieldErrorf(secrets.Invalid, "page_token", "page_token is not valid for this list; start again without it")
	if len(token) > maxPageToken {
		return "", bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= sha256.Size {
		return "", bad
	}
	payload, tag := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	if !hmac.Equal(tag, mac.Sum(nil)) {
		return "", bad
	}
	var f []string
	if err := json.Unmarshal(payload, &f); err != nil || len(f) != 6 || f[0] != "v1" {
		return "", bad
	}
	if f[1] != b.kind || f[2] != b.project || f[3] != b.secretID || f[4] != b.prefix || f[5] == "" {
		return "", bad
	}
	return f[5], nil
}

// pageKey returns the key that signs page tokens: Options.PageTokenKey,
// else the store's page-token service key, read once (every server on one
// store shares it).
func (s *server) pageKey(ctx context.Context) ([]byte, error) {
	if k := s.tokKey.Load(); k != nil {
		return *k, nil
	}
	k, err := s.svc.ServiceKey(ctx, secrets.PurposePageToken)
	if err != nil {
		return nil, err
	}
	s.tokKey.Store(&k)
	return k, nil
}

// pageQuery reads limit (default 50, 1-1000) and page_token.
func pageQuery(r *http.Request) (limit int, token string, err error) {
	q := r.URL.Query()
	limit = secrets.DefaultPageSize
	if ls := q.Get("limit"); ls != "" {
		n, err := strconv.Atoi(ls)
		if err != nil || n < 1 || n > secrets.MaxPageSize {
			return 0, "", secrets.FieldErrorf(secrets.Invalid, "limit", "limit must be a whole number from 1 to %d", secrets.MaxPageSize)
		}
		limit = n
	}
	return limit, q.Get("page_token"), nil
}
