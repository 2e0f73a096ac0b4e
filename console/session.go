package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// Cookies of the console, both HttpOnly, SameSite=Strict, on /ui/ only.
const (
	sessionCookie    = "llmproxy_session"
	loginCSRFCookie  = "llmproxy_login_csrf"
	sessionIdle      = 12 * time.Hour // a session unused this long ends
	sessionLifetime  = 24 * time.Hour // and any session ends this long after sign-in
	sessionSweepSize = 1_000          // sessions held before expired ones are dropped
)

// session is a signed-in browser: the admin, or one virtual key.
type session struct {
	id    string
	csrf  string // the token every POST of this session carries
	admin bool
	// The virtual key's, for a key's session. The hash is kept so that
	// a key whose secret changed (deleted and added again under the same
	// ID) does not keep the session.
	keyID, keyName, keyHash string
	created, seen           time.Time
}

// sessionStore holds the sessions in memory: signing out or revoking a
// key ends a session at once, which a stateless cookie could not do; a
// restart signs everyone out.
type sessionStore struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessionStore() *sessionStore { return &sessionStore{m: map[string]*session{}} }

func (s *session) expired(now time.Time) bool {
	return now.Sub(s.seen) >= sessionIdle || now.Sub(s.created) >= sessionLifetime
}

// get returns a copy of the live session id names, marking it used.
func (st *sessionStore) get(id string, now time.Time) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return session{}, false
	}
	if s.expired(now) {
		delete(st.m, id)
		return session{}, false
	}
	s.seen = now
	return *s, true
}

// add stores s, first dropping expired sessions when there are many.
func (st *sessionStore) add(s *session, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.m) >= sessionSweepSize {
		for id, o := range st.m {
			if o.expired(now) {
				delete(st.m, id)
			}
		}
	}
	st.m[s.id] = s
}

func (st *sessionStore) remove(id string) {
	st.mu.Lock()
	delete(st.m, id)
	st.mu.Unlock()
}

// removeKey ends every session of the key keyID.
func (st *sessionStore) removeKey(keyID string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, s := range st.m {
		if !s.admin && s.keyID == keyID {
			delete(st.m, id)
		}
	}
}

// currentSession is r's live session, or nil. A key's session is
// checked against the stored key on every request, so that a key
// deleted or expired — by this console, the CLI or another replica —
// ends its sessions at once.
func (c *Console) currentSession(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	now := c.now()
	s, ok := c.sessions.get(ck.Value, now)
	if !ok {
		return nil
	}
	if s.admin {
		return &s
	}
	k, err := c.storage.Key(r.Context(), s.keyID)
	switch {
	case errors.Is(err, llmproxy.ErrNotFound):
	case err != nil:
		// The store did not answer: signed out for this request only.
		c.log.Error("console: checking a key's session", "key_id", s.keyID, "err", err)
		return nil
	case !k.Expired(now) && k.Hash == s.keyHash:
		s.keyName = k.Name
		return &s
	}
	c.sessions.remove(s.id)
	return nil
}

// cookie returns a console cookie of r's scheme.
func cookie(r *http.Request, name, value string) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix + "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r)}
}

// loginPage serves the sign-in form with a fresh double-submit token.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, "")
}

// renderLogin answers the sign-in form with status and an error (""
// for none). The form's token is also set as a cookie: the browser
// sends both, a forged form from elsewhere cannot read the cookie.
func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := ""
	if ck, err := r.Cookie(loginCSRFCookie); err == nil && len(ck.Value) == 43 {
		token = ck.Value
	} else {
		token = newToken()
		http.SetCookie(w, cookie(r, loginCSRFCookie, token))
	}
	v := newView(nil, "Sign in", "", nil)
	v.CSRF, v.Error = token, msg
	c.render(w, r, status, "login", v)
}

// login signs in with the master key or a virtual key's secret.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		c.errorPage(w, r, nil, http.StatusBadRequest, "The form could not be read.")
		return
	}
	ck, err := r.Cookie(loginCSRFCookie)
	if err != nil || !tokenEqual(r.PostForm.Get("csrf"), ck.Value) {
		c.errorPage(w, r, nil, http.StatusForbidden, msgCSRF)
		return
	}
	if !sameOrigin(r) {
		c.errorPage(w, r, nil, http.StatusForbidden, msgOrigin)
		return
	}
	ip, now := clientIP(r), c.now()
	if wait, blocked := c.throttle.blocked(ip, now); blocked {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		c.renderLogin(w, r, http.StatusTooManyRequests,
			"Too many failed sign-ins from your address. Try again in "+strconv.Itoa((secs+59)/60)+" min.")
		return
	}
	s, err := c.authenticate(r, r.PostForm.Get("key"))
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	if s == nil {
		c.sleep(r.Context(), c.throttle.fail(ip, now))
		c.log.Warn("console: failed sign-in", "ip", ip)
		c.renderLogin(w, r, http.StatusUnauthorized, "Wrong key")
		return
	}
	c.throttle.reset(ip)
	s.id, s.csrf, s.created, s.seen = newToken(), newToken(), now, now
	c.sessions.add(s, now)
	// A new session id on every sign-in: an id planted before cannot be
	// ridden.
	if old, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.remove(old.Value)
	}
	http.SetCookie(w, cookie(r, sessionCookie, s.id))
	if s.admin {
		c.log.Info("console: admin signed in", "ip", ip)
	} else {
		c.log.Info("console: key signed in", "ip", ip, "key_id", s.keyID)
	}
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

// authenticate returns the session secret opens (without its id and
// token), nil for a wrong, deleted or expired key, or an error when the
// keys could not be read.
func (c *Console) authenticate(r *http.Request, secret string) (*session, error) {
	if secret == "" {
		return nil, nil
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], c.master[:]) == 1 {
		return &session{admin: true}, nil
	}
	hash := llmproxy.HashKey(secret)
	keys, err := c.storage.Keys(r.Context(), llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) == 1 {
			if k.Expired(c.now()) {
				return nil, nil
			}
			return &session{keyID: k.ID, keyName: k.Name, keyHash: k.Hash}, nil
		}
	}
	return nil, nil
}

// logout ends the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.remove(s.id)
	gone := cookie(r, sessionCookie, "")
	gone.MaxAge = -1
	http.SetCookie(w, gone)
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}
