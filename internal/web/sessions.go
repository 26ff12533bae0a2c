package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// sessions is the server-side set of signed-in browsers: a random id per
// login, kept until it expires or is revoked, at most max at once. The
// table is keyed by the id's SHA-256, so a lookup's timing says nothing
// about the ids it holds.
//
// # Notes
//
// The table lives in the process: a restart signs everyone out, and
// replicas behind one Service need session affinity (deploy/k8s/web.yaml).
type sessions struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	expiry map[[sha256.Size]byte]time.Time
}

func newSessions(max int, ttl time.Duration) *sessions {
	return &sessions{max: max, ttl: ttl, now: time.Now, expiry: map[[sha256.Size]byte]time.Time{}}
}

// create starts a session and returns its id.
func (s *sessions) create() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.expiry) >= s.max {
		s.evictLocked(now)
	}
	s.expiry[sha256.Sum256([]byte(id))] = now.Add(s.ttl)
	return id, nil
}

// evictLocked drops every expired session, or else the one closest to
// expiry (the oldest).
func (s *sessions) evictLocked(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestAt time.Time
	dropped := false
	for k, exp := range s.expiry {
		if !now.Before(exp) {
			delete(s.expiry, k)
			dropped = true
		} else if oldestAt.IsZero() || exp.Before(oldestAt) {
			oldest, oldestAt = k, exp
		}
	}
	if !dropped && !oldestAt.IsZero() {
		delete(s.expiry, oldest)
	}
}

func (s *sessions) valid(id string) bool {
	if id == "" {
		return false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expiry[k]
	if ok && !s.now().Before(exp) {
		delete(s.expiry, k)
		return false
	}
	return ok
}

func (s *sessions) revoke(id string) {
	s.mu.Lock()
	delete(s.expiry, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.expiry)
}
