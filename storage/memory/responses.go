package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// copyResponse copies r's payloads, so that the caller and the store never
// share a byte slice.
func copyResponse(r llmproxy.StoredResponse) llmproxy.StoredResponse {
	r.Items = slices.Clone(r.Items)
	r.Response = slices.Clone(r.Response)
	return r
}

// expired reports whether r has expired at now: its ExpiresAt is set and
// not after now, as for a virtual key.
func expired(r *llmproxy.StoredResponse, now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// PutResponse stores a copy of r, replacing a response with the same ID.
func (s *Store) PutResponse(ctx context.Context, r *llmproxy.StoredResponse) error {
	if r == nil || r.ID == "" {
		return fmt.Errorf("%w: stored response without an ID", llmproxy.ErrInvalid)
	}
	c := copyResponse(*r)
	s.responsesMu.Lock()
	defer s.responsesMu.Unlock()
	s.responses[c.ID] = c
	return nil
}

// GetResponse returns a copy of the response with id unless it has
// expired.
func (s *Store) GetResponse(ctx context.Context, id string) (*llmproxy.StoredResponse, error) {
	s.responsesMu.RLock()
	defer s.responsesMu.RUnlock()
	r, ok := s.responses[id]
	if !ok || expired(&r, now()) {
		return nil, fmt.Errorf("%w: response %q", llmproxy.ErrNotFound, id)
	}
	r = copyResponse(r)
	return &r, nil
}

// DeleteResponse deletes the response with id unless it has expired (the
// sweep removes that one).
func (s *Store) DeleteResponse(ctx context.Context, id string) error {
	s.responsesMu.Lock()
	defer s.responsesMu.Unlock()
	r, ok := s.responses[id]
	if !ok || expired(&r, now()) {
		return fmt.Errorf("%w: response %q", llmproxy.ErrNotFound, id)
	}
	delete(s.responses, id)
	return nil
}

// DeleteExpiredResponses deletes the responses whose ExpiresAt is before
// now.
func (s *Store) DeleteExpiredResponses(ctx context.Context, now time.Time) (int64, error) {
	s.responsesMu.Lock()
	defer s.responsesMu.Unlock()
	var n int64
	for id, r := range s.responses {
		if !r.ExpiresAt.IsZero() && r.ExpiresAt.Before(now) {
			delete(s.responses, id)
			n++
		}
	}
	return n, nil
}
