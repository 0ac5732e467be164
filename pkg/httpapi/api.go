package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Route flags.
const (
	withBody   = 1 << iota // the route reads a JSON body
	idempotent             // the route honours Idempotency-Key
	shownOnce              // the answer holds a credential that is never replayed
)

// reply is a handler's successful answer.
type reply struct {
	status   int
	body     any   // nil for no body
	revision int64 // the secret's revision, sent as ETag when non-zero
	location string
}

type handlerFunc func(r *http.Request, c *call) (reply, error)

// api wraps a handler with authorization, body reading and idempotency.
func (s *server) api(scope string, vis visibility, flags int, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authorize(r, infoOf(w), scope, vis)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if flags&withBody != 0 {
			if c.body, err = s.readBody(w, r); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if flags&idempotent != 0 && len(r.Header.Values("Idempotency-Key")) > 0 {
			s.serveIdempotent(w, r, c, flags, h)
			return
		}
		rep, err := h(r, c)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		encodeReply(rep).write(w)
	})
}

// answer is an encoded reply: what is sent, and what an idempotent request
// records and replays.
type answer struct {
	status   int
	etag     string // "" for none
	location string // "" for none
	body     []byte // nil for no body
}

// encodeReply encodes rep; a body that cannot be encoded is a 500.
func encodeReply(rep reply) answer {
	a := answer{status: rep.status, location: rep.location}
	if rep.revision != 0 {
		a.etag = etag(rep.revision)
	}
	if rep.body != nil {
		b, err := json.Marshal(rep.body)
		if err != nil {
			return answer{status: http.StatusInternalServerError, body: []byte(`{"error":{"code":"Internal Server Error","status":500,"message":"internal error"}}` + "\n")}
		}
		a.body = append(b, '\n')
	}
	return a
}

// header returns the headers of a worth replaying.
func (a answer) header() map[string]string {
	header := map[string]string{}
	if a.etag != "" {
		header["ETag"] = a.etag
	}
	if a.location != "" {
		header["Location"] = a.location
	}
	return header
}

// write sends a.
func (a answer) write(w http.ResponseWriter) {
	if a.etag != "" {
		w.Header().Set("ETag", a.etag)
	}
	if a.location != "" {
		w.Header().Set("Location", a.location)
	}
	writeReply(w, a.status, a.body)
}

func writeReply(w http.ResponseWriter, status int, body []byte) {
	if body == nil {
		w.WriteHeader(status)
		return
	}
	writeBody(w, status, body)
}

// serveIdempotent runs a request that carries an Idempotency-Key: the first
// time, it runs it and remembers a successful answer; a retry with the same
// method, path and body gets that answer again, marked
// Idempotent-Replayed, and writes nothing. A failed request releases the
// key. Keys are scoped to the caller's project.
func (s *server) serveIdempotent(w http.ResponseWriter, r *http.Request, c *call, flags int, h handlerFunc) {
	ctx := r.Context()
	key := r.Header.Get("Idempotency-Key")
	hash := requestHash(r.Method, r.URL.EscapedPath(), c.body)
	rec, err := s.svc.BeginIdempotent(ctx, c.project, key, hash)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rec != nil {
		if flags&shownOnce != 0 {
			var first CreatedAPIKeyJSON
			json.Unmarshal(rec.Body, &first)
			s.writeError(w, r, secrets.FieldErrorf(secrets.Conflict, "Idempotency-Key",
				"the first request with this Idempotency-Key created API key %q, which is shown only once; revoke it if it was lost, and create another", first.ID))
			return
		}
		for k, v := range rec.Header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeReply(w, rec.Status, rec.Body)
		return
	}
	// The claim is settled even if the client goes away, and released if
	// the handler panics.
	bg := context.WithoutCancel(ctx)
	settled := false
	defer func() {
		if !settled {
			s.abortIdempotent(bg, w, c.project, key)
		}
	}()
	rep, err := h(r, c)
	settled = true
	if err != nil {
		s.abortIdempotent(bg, w, c.project, key)
		s.writeError(w, r, err)
		return
	}
	a := encodeReply(rep)
	stored := a.body
	if flags&shownOnce != 0 {
		stored = redactKey(a.body)
	}
	if a.status >= 200 && a.status < 300 {
		if err := s.svc.CompleteIdempotent(bg, c.project, key, hash, a.status, a.header(), stored); err != nil {
			s.log.ErrorContext(ctx, "recording an idempotent response failed",
				"request_id", infoOf(w).id, "err", err.Error())
			s.abortIdempotent(bg, w, c.project, key)
		}
	} else {
		s.abortIdempotent(bg, w, c.project, key)
	}
	a.write(w)
}

func (s *server) abortIdempotent(ctx context.Context, w http.ResponseWriter, project, key string) {
	if err := s.svc.AbortIdempotent(ctx, project, key); err != nil {
		s.log.ErrorContext(ctx, "releasing an Idempotency-Key failed",
			"request_id", infoOf(w).id, "err", err.Error())
	}
}

// redactKey drops the key from a created API key's JSON, so that the
// idempotency record never stores a credential.
func redactKey(body []byte) []byte {
	var k CreatedAPIKeyJSON
	if err := json.Unmarshal(body, &k); err != nil {
		return nil
	}
	k.Key = ""
	b, _ := json.Marshal(k)
	return b
}

// requestHash is the hex SHA-256 of method, path and body, each
// length-prefixed.
func requestHash(method, path string, body []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(method), []byte(path), body} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}
