package hub

import (
	"sync"
	"time"
)

// refusals remembers, for a short while, which user was refused which lead
// by the GroupAuthorizer, so that a client repeating a refused join is
// refused again without a lookup. It is bounded: when full, expired
// entries go, and if none has, the new refusal is not remembered.
type refusals struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[refusal]time.Time // until when
}

type refusal struct {
	user string
	lead int64
}

// maxRefusals bounds the cache: about 100 bytes an entry.
const maxRefusals = 100_000

func (r *refusals) refused(user string, lead int64, now time.Time) bool {
	if r.ttl <= 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.m[refusal{user, lead}]
	return ok && now.Before(until)
}

func (r *refusals) remember(user string, lead int64, now time.Time) {
	if r.ttl <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[refusal]time.Time{}
	}
	if len(r.m) >= maxRefusals {
		for k, until := range r.m {
			if !now.Before(until) {
				delete(r.m, k)
			}
		}
		if len(r.m) >= maxRefusals {
			return
		}
	}
	r.m[refusal{user, lead}] = now.Add(r.ttl)
}
