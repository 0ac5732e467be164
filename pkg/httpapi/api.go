package httpapi

import (
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

// route is one API route's handler and how it is served.
type route struct {
	h     handlerFunc
	flags int
	// render, for an idempotent route, builds its answer from the outcome
	// of its write; the handler answers with the same function, and the
	// Idempotency-Key record stores its answer in the write's own commit.
	render func(*secrets.Outcome) reply
}

// api wraps a handler with authorization and body reading.
func (s *server) api(scope string, vis visibility, flags int, h handlerFunc) http.Handler {
	return s.serve(scope, vis, route{h: h, flags: flags})
}

// idempotentAPI is api for a route that honours Idempotency-Key.
func (s *server) idempotentAPI(scope string, vis visibility, flags int, h handlerFunc, render func(*secrets.Outcome) reply) http.Handler {
	return s.serve(scope, vis, route{h: h, flags: flags | idempotent, render: render})
}

func (s *server) serve(scope string, vis visibility, rt route) http.Handler {
	flags, h := rt.flags, rt.h
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authorize(r, infoOf(w), scope, vis)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		// The key's ID is the actor of the events of what it changes.
		r = r.WithContext(secrets.WithActor(r.Context(), c.key.ID))
		if flags&withBody != 0 {
			if c.body, err = s.readBody(w, r); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if flags&idempotent != 0 && len(r.Header.Values("Idempotency-Key")) > 0 {
			s.serveIdempotent(w, r, c, rt)
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
