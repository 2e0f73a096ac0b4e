package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// The ResponseStore part of the suite. A Storage that does not implement
// llmproxy.ResponseStore skips it (the gateway then serves the Responses
// API without conversation state); every standard backend implements it.
//
// Expiry instants are fixed dates: ones long past for expired responses,
// ones in 2099 and later for live ones, so that the suite never depends on
// the clock, yet a store that checks expiry against it is tested.

var (
	responseCreated = time.Date(2025, 3, 4, 5, 6, 7, 123_000_000, time.UTC)
	responseLive    = time.Date(2099, 2, 3, 4, 5, 6, 789_000_000, time.UTC)
	responsePast    = time.Date(2020, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
)

// responseStore returns s as a ResponseStore, or skips the test.
func responseStore(t *testing.T, s llmproxy.Storage) llmproxy.ResponseStore {
	t.Helper()
	rs, ok := s.(llmproxy.ResponseStore)
	if !ok {
		t.Skipf("%T does not implement llmproxy.ResponseStore", s)
	}
	return rs
}

// conversationJSON returns a JSON array of Responses input items of about
// size bytes, deterministic for seed, with what byte-exact storage must
// keep: escapes, non-ASCII text, irregular spacing.
func conversationJSON(seed string, size int) []byte {
	var b strings.Builder
	b.Grow(size + 512)
	b.WriteString("[\n")
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteString(" ,\n")
		}
		role := [...]string{"user", "assistant"}[i%2]
		fmt.Fprintf(&b, `{"type":"message", "role":%q,"content":[ {"type":"input_text","text":"%s turn %d: h\u00e9llo \u2713 \ud83d\ude00 \"quoted\" \\ back\tslash\n line %s"} ]}`,
			role, seed, i, strings.Repeat("lorem ipsum ", 40))
		if i%7 == 3 {
			fmt.Fprintf(&b, `,{"type":"function_call","call_id":"call_%s_%d","name":"exec_command","arguments":"{\"cmd\":[\"ls\",\"-la\"],\"n\":%d}"}`, seed, i, i)
		}
	}
	b.WriteString("\n]")
	return []byte(b.String())
}

// newResponse returns a response with every field set, its Items about
// size bytes and its Response a quarter of that.
func newResponse(id string, size int) *llmproxy.StoredResponse {
	return &llmproxy.StoredResponse{
		ID:           id,
		KeyID:        "key_" + id,
		ConnectionID: "conn_" + id,
		Model:        "gpt-4o-" + id,
		PreviousID:   "resp_before_" + id,
		Items:        conversationJSON(id, size),
		Response:     []byte(fmt.Sprintf(`{"id":%q,"object":"response","output":%s}`, id, conversationJSON("out-"+id, size/4))),
		CreatedAt:    responseCreated,
		ExpiresAt:    responseLive,
	}
}

// equalBytes reports where got and want differ without printing them: the
// payloads are megabytes, and their content is not for logs.
func equalBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: %d bytes, want %d; they differ from byte %d on", what, len(got), len(want), i)
}

func equalResponse(t *testing.T, what string, got, want *llmproxy.StoredResponse) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil response", what)
		return
	}
	if got.ID != want.ID || got.KeyID != want.KeyID || got.ConnectionID != want.ConnectionID || got.Model != want.Model ||
		got.Native != want.Native || got.PreviousID != want.PreviousID {
		t.Errorf("%s: got {ID:%q KeyID:%q ConnectionID:%q Model:%q Native:%v PreviousID:%q}, want {ID:%q KeyID:%q ConnectionID:%q Model:%q Native:%v PreviousID:%q}",
			what, got.ID, got.KeyID, got.ConnectionID, got.Model, got.Native, got.PreviousID,
			want.ID, want.KeyID, want.ConnectionID, want.Model, want.Native, want.PreviousID)
	}
	if !sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Errorf("%s: times (created, expires) %v/%v, want %v/%v", what, got.CreatedAt, got.ExpiresAt, want.CreatedAt, want.ExpiresAt)
	}
	equalBytes(t, what+": Items", got.Items, want.Items)
	equalBytes(t, what+": Response", got.Response, want.Response)
}

// getResponse reads id and checks it against want.
func getResponse(t *testing.T, rs llmproxy.ResponseStore, what string, want *llmproxy.StoredResponse) {
	t.Helper()
	got, err := rs.GetResponse(t.Context(), want.ID)
	if err != nil {
		t.Errorf("%s: GetResponse %s: %v", what, want.ID, err)
		return
	}
	equalResponse(t, what, got, want)
}

// wantGone checks that GetResponse of id is ErrNotFound.
func wantGone(t *testing.T, rs llmproxy.ResponseStore, what, id string) {
	t.Helper()
	_, err := rs.GetResponse(t.Context(), id)
	wantErr(t, what+": GetResponse "+id, err, llmproxy.ErrNotFound)
}

// testResponseRoundTrip stores a long conversation (megabytes of JSON), a
// native response of the master key with no content, and one that never
// expires, and reads each back exactly.
func testResponseRoundTrip(t *testing.T, s llmproxy.Storage) {
	rs := responseStore(t, s)
	ctx := t.Context()
	long := newResponse("resp_long", 3<<20)
	if len(long.Items) < 3<<20 || len(long.Response) < 750<<10 {
		t.Fatalf("fixture too small: %d and %d bytes", len(long.Items), len(long.Response))
	}
	native := &llmproxy.StoredResponse{
		ID: "resp_native", ConnectionID: "conn_openai", Model: "gpt-4o", Native: true,
		CreatedAt: responseCreated, ExpiresAt: responseLive,
	}
	forever := newResponse("resp_forever", 100)
	forever.ExpiresAt, forever.PreviousID = time.Time{}, ""
	for _, r := range []*llmproxy.StoredResponse{long, native, forever} {
		must(t, "PutResponse "+r.ID, rs.PutResponse(ctx, r))
	}
	getResponse(t, rs, "long conversation", long)
	getResponse(t, rs, "native response of the master key", native)
	getResponse(t, rs, "response that never expires", forever)

	// The store keeps copies: changing what was put, or what was read,
	// changes nothing stored.
	want := newResponse("resp_long", 3<<20)
	long.Items[10], long.Response[10] = 'X', 'X'
	got, err := rs.GetResponse(ctx, want.ID)
	must(t, "GetResponse", err)
	equalResponse(t, "after changing the record put", got, want)
	got.Items[10], got.Response[10] = 'Y', 'Y'
	getResponse(t, rs, "after changing the record read", want)
}

// testResponseReplace stores a response again under the same ID with every
// field changed: the second one is what is read.
func testResponseReplace(t *testing.T, s llmproxy.Storage) {
	rs := responseStore(t, s)
	ctx := t.Context()
	first := newResponse("resp_same", 200_000)
	must(t, "PutResponse", rs.PutResponse(ctx, first))
	other := newResponse("resp_other", 1000)
	must(t, "PutResponse", rs.PutResponse(ctx, other))

	second := newResponse("resp_x", 5_000) // shorter content
	second.ID = first.ID
	second.Native = true
	second.KeyID = ""
	second.CreatedAt = responseCreated.Add(time.Hour)
	second.ExpiresAt = responseLive.Add(24 * time.Hour)
	must(t, "PutResponse replacing", rs.PutResponse(ctx, second))
	getResponse(t, rs, "replaced response", second)
	getResponse(t, rs, "the other response", other)

	// Native, with no content, then a translated one again.
	third := &llmproxy.StoredResponse{ID: first.ID, KeyID: "key_3", Native: true, CreatedAt: responseCreated, ExpiresAt: responseLive}
	must(t, "PutResponse replacing", rs.PutResponse(ctx, third))
	getResponse(t, rs, "replaced by a native response", third)
	must(t, "PutResponse replacing", rs.PutResponse(ctx, first))
	getResponse(t, rs, "replaced by the first again", first)

	// An expired response stored again with a new expiry is live again.
	expired := newResponse("resp_revived", 100)
	expired.ExpiresAt = responsePast
	must(t, "PutResponse expired", rs.PutResponse(ctx, expired))
	wantGone(t, rs, "expired", expired.ID)
	expired.ExpiresAt = responseLive
	must(t, "PutResponse again", rs.PutResponse(ctx, expired))
	getResponse(t, rs, "stored again with a new expiry", expired)
}

// testResponseNotFound covers every way a response is not there: never
// stored, expired, deleted.
func testResponseNotFound(t *testing.T, s llmproxy.Storage) {
	rs := responseStore(t, s)
	ctx := t.Context()
	wantGone(t, rs, "never stored", "resp_missing")
	wantErr(t, "DeleteResponse of a missing response", rs.DeleteResponse(ctx, "resp_missing"), llmproxy.ErrNotFound)

	expired := newResponse("resp_expired", 1000)
	expired.ExpiresAt = responsePast
	must(t, "PutResponse expired", rs.PutResponse(ctx, expired))
	wantGone(t, rs, "ExpiresAt in the past", expired.ID)
	justExpired := newResponse("resp_just_expired", 100)
	justExpired.ExpiresAt = time.Now().Add(-2 * time.Millisecond)
	must(t, "PutResponse just expired", rs.PutResponse(ctx, justExpired))
	wantGone(t, rs, "ExpiresAt a moment ago", justExpired.ID)
	// To the API an expired response is gone: deleting it is not found
	// either (the sweep removes it).
	wantErr(t, "DeleteResponse of an expired response", rs.DeleteResponse(ctx, expired.ID), llmproxy.ErrNotFound)

	r := newResponse("resp_deleted", 1000)
	keep := newResponse("resp_kept", 1000)
	must(t, "PutResponse", rs.PutResponse(ctx, r))
	must(t, "PutResponse", rs.PutResponse(ctx, keep))
	must(t, "DeleteResponse", rs.DeleteResponse(ctx, r.ID))
	wantGone(t, rs, "deleted", r.ID)
	wantErr(t, "DeleteResponse again", rs.DeleteResponse(ctx, r.ID), llmproxy.ErrNotFound)
	getResponse(t, rs, "the response not deleted", keep)
}

// testResponseExpirySweep checks that DeleteExpiredResponses deletes
// exactly the responses whose ExpiresAt is before now, and counts them.
func testResponseExpirySweep(t *testing.T, s llmproxy.Storage) {
	rs := responseStore(t, s)
	ctx := t.Context()
	n, err := rs.DeleteExpiredResponses(ctx, time.Now())
	must(t, "DeleteExpiredResponses of an empty store", err)
	if n != 0 {
		t.Errorf("DeleteExpiredResponses of an empty store = %d, want 0", n)
	}
	sweep := time.Date(2100, 6, 1, 0, 0, 0, 0, time.UTC)
	expiring := map[string]time.Time{
		"resp_a_2099":         responseLive,
		"resp_b_just_before":  sweep.Add(-time.Millisecond),
		"resp_c_at_the_sweep": sweep, // not before it: kept
		"resp_d_after":        sweep.Add(time.Millisecond),
		"resp_e_2101":         sweep.AddDate(1, 0, 0),
		"resp_f_never":        {},
	}
	for _, id := range sortedKeys(expiring) {
		r := newResponse(id, 2000)
		r.ExpiresAt = expiring[id]
		must(t, "PutResponse "+id, rs.PutResponse(ctx, r))
	}
	n, err = rs.DeleteExpiredResponses(ctx, sweep)
	must(t, "DeleteExpiredResponses", err)
	if n != 2 {
		t.Errorf("DeleteExpiredResponses(%v) = %d, want 2", sweep, n)
	}
	for _, id := range sortedKeys(expiring) {
		_, err := rs.GetResponse(ctx, id)
		if id < "resp_c" {
			wantErr(t, "GetResponse of a swept response "+id, err, llmproxy.ErrNotFound)
		} else {
			wantErr(t, "GetResponse of a response the sweep kept "+id, err, nil)
		}
	}
	n, err = rs.DeleteExpiredResponses(ctx, sweep)
	if err != nil || n != 0 {
		t.Errorf("DeleteExpiredResponses again = %d, %v; want 0", n, err)
	}

	// More expired responses than a backend might delete in one go.
	const many = 520
	for i := range many {
		r := &llmproxy.StoredResponse{ID: fmt.Sprintf("resp_old_%04d", i), KeyID: "key_old", Native: true,
			CreatedAt: responsePast, ExpiresAt: responsePast.Add(time.Duration(i) * time.Second)}
		must(t, "PutResponse", rs.PutResponse(ctx, r))
	}
	n, err = rs.DeleteExpiredResponses(ctx, sweep.AddDate(10, 0, 0))
	must(t, "DeleteExpiredResponses", err)
	if n != many+3 {
		t.Errorf("DeleteExpiredResponses of everything but the response that never expires = %d, want %d", n, many+3)
	}
	if _, err := rs.GetResponse(ctx, "resp_f_never"); err != nil {
		t.Errorf("GetResponse of the response that never expires after the sweeps: %v", err)
	}
}

// testResponseInvalid checks that a response without an ID is refused, and
// that no error message carries a response's content.
func testResponseInvalid(t *testing.T, s llmproxy.Storage) {
	rs := responseStore(t, s)
	const secret = "SECRET-CONVERSATION-CONTENT"
	r := &llmproxy.StoredResponse{Items: []byte(`[{"text":"` + secret + `"}]`), Response: []byte(`{"text":"` + secret + `"}`),
		CreatedAt: responseCreated, ExpiresAt: responseLive}
	err := rs.PutResponse(t.Context(), r)
	wantErr(t, "PutResponse without an ID", err, llmproxy.ErrInvalid)
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("PutResponse error quotes the content: %v", err)
	}
	// A write that fails in the database (its context is cancelled)
	// does not quote the content either.
	r.ID = "resp_cancelled"
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := rs.PutResponse(ctx, r); err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("PutResponse error quotes the content: %v", err)
	}
}

// testResponseConcurrent puts and gets from several goroutines at once:
// each its own responses, and all of them one shared ID whose every
// version must read back whole, never mixed with another.
func testResponseConcurrent(t *testing.T, s llmproxy.Storage) {
	rs := responseStore(t, s)
	ctx := t.Context()
	const (
		workers = 6
		each    = 15
		shared  = "resp_shared"
	)
	version := func(v int) *llmproxy.StoredResponse {
		r := newResponse(fmt.Sprintf("v%d", v), 4000+v*10)
		r.ID, r.Model = shared, fmt.Sprintf("v%d", v)
		return r
	}
	must(t, "PutResponse", rs.PutResponse(ctx, version(0)))
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				r := newResponse(fmt.Sprintf("resp_w%d_%d", w, i), 3000)
				if err := rs.PutResponse(ctx, r); err != nil {
					errs <- fmt.Errorf("PutResponse %s: %w", r.ID, err)
					return
				}
				if err := rs.PutResponse(ctx, version(w*each+i+1)); err != nil {
					errs <- fmt.Errorf("PutResponse %s: %w", shared, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 2 * each {
				got, err := rs.GetResponse(ctx, shared)
				if err != nil {
					errs <- fmt.Errorf("GetResponse %s: %w", shared, err)
					return
				}
				var v int
				if _, err := fmt.Sscanf(got.Model, "v%d", &v); err != nil {
					errs <- fmt.Errorf("GetResponse %s: model %q is no version written", shared, got.Model)
					return
				}
				want := version(v)
				if !bytes.Equal(got.Items, want.Items) || !bytes.Equal(got.Response, want.Response) || got.KeyID != want.KeyID {
					errs <- fmt.Errorf("GetResponse %s: version %d read mixed with another", shared, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		for i := range each {
			getResponse(t, rs, "after the concurrent writes", newResponse(fmt.Sprintf("resp_w%d_%d", w, i), 3000))
		}
	}
}

// testSharedResponses checks that a response one store writes is read,
// deleted and swept through the other.
func testSharedResponses(t *testing.T, a, b llmproxy.Storage) {
	ra, rb := responseStore(t, a), responseStore(t, b)
	ctx := t.Context()
	r := newResponse("resp_shared", 100_000)
	must(t, "a.PutResponse", ra.PutResponse(ctx, r))
	getResponse(t, rb, "b reads a's response", r)
	r2 := newResponse("resp_y", 10)
	r2.ID = r.ID
	must(t, "b.PutResponse replacing", rb.PutResponse(ctx, r2))
	getResponse(t, ra, "a reads b's replacement", r2)
	must(t, "b.DeleteResponse", rb.DeleteResponse(ctx, r.ID))
	wantGone(t, ra, "a after b's delete", r.ID)

	old := newResponse("resp_old", 10)
	old.ExpiresAt = responsePast
	must(t, "a.PutResponse", ra.PutResponse(ctx, old))
	n, err := rb.DeleteExpiredResponses(ctx, time.Now())
	if err != nil || n != 1 {
		t.Errorf("b.DeleteExpiredResponses of a's expired response = %d, %v; want 1", n, err)
	}
}
