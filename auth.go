package llmproxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"
)

var (
	errNoKey = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'."}
	errBadKey = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "Incorrect API key provided."}
	errNotBearer = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "The Authorization header must carry the API key as 'Bearer YOUR_API_KEY'."}
	errKeyChars = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "Incorrect API key provided: it contains whitespace or non-ASCII characters."}
	errExpiredKey = &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: "invalid_api_key",
		Message: "This API key has expired."}
)

// caller is who sent a request: the master key (key nil) or a virtual key.
type caller struct {
	key *keyEntry
}

// authenticate finds the caller from the Authorization (Bearer), x-api-key
// (Anthropic's clients) or api-key (Azure's) header, in the snapshot: no
// database round trip.
func (g *Gateway) authenticate(r *http.Request, s *snapshot) (caller, error) {
	secret := ""
	if v := r.Header["Authorization"]; len(v) > 0 {
		a := strings.TrimSpace(v[0])
		if a == "" {
			return caller{}, errNoKey
		}
		if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") {
			if strings.EqualFold(a, "bearer") {
				return caller{}, errNoKey
			}
			return caller{}, errNotBearer
		}
		secret = strings.TrimSpace(a[7:])
	} else if v := r.Header["X-Api-Key"]; len(v) > 0 {
		secret = strings.TrimSpace(v[0])
	} else if v := r.Header["Api-Key"]; len(v) > 0 {
		secret = strings.TrimSpace(v[0])
	}
	if secret == "" {
		return caller{}, errNoKey
	}
	if !printableASCII(secret) {
		return caller{}, errKeyChars
	}
	// Providers never see the client's key.
	delete(r.Header, "Authorization")
	delete(r.Header, "X-Api-Key")
	delete(r.Header, "Api-Key")
	sum := sha256.Sum256([]byte(secret))
	if g.hasMaster && subtle.ConstantTimeCompare(sum[:], g.master[:]) == 1 {
		return caller{}, nil
	}
	e := s.keys[sum]
	if e == nil {
		return caller{}, errBadKey
	}
	if e.key.Expired(time.Now()) {
		return caller{}, errExpiredKey
	}
	return caller{key: e}, nil
}

// grants returns what c may use under alias; nil when nothing (or the
// alias does not exist: both answer the same, so keys cannot probe).
func (c caller) grants(s *snapshot, alias string) []grant {
	if c.key != nil {
		return c.key.grants[alias]
	}
	return s.aliases[alias]
}

func modelNotFound(alias string) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", sanitize(alias))}
}
