package secret

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-llm-proxy/llmproxy"
)

// KeyRing is a Sealer for rotating the encryption key: it seals with its
// first (primary) Sealer and opens with any of them, the primary first.
// A store opened with KeyRing{new, old} reads secrets sealed under either
// key and writes them under the new one; Reseal then moves
// every stored secret to the new key, after which the old one can go.
type KeyRing struct {
	sealers []Sealer
}

var _ Sealer = (*KeyRing)(nil)

// NewKeyRing returns a KeyRing that seals with primary and also opens what
// any of previous sealed.
func NewKeyRing(primary Sealer, previous ...Sealer) (*KeyRing, error) {
	if primary == nil {
		return nil, fmt.Errorf("%w: a KeyRing needs a primary key", llmproxy.ErrInvalid)
	}
	r := &KeyRing{sealers: []Sealer{primary}}
	for _, p := range previous {
		if p == nil {
			return nil, fmt.Errorf("%w: a nil previous key in a KeyRing", llmproxy.ErrInvalid)
		}
		r.sealers = append(r.sealers, p)
	}
	return r, nil
}

// NewAESGCMKeyRing returns a KeyRing of AES-256-GCM Sealers for 32-byte
// keys, the first being the primary.
func NewAESGCMKeyRing(primary []byte, previous ...[]byte) (*KeyRing, error) {
	p, err := NewAESGCM(primary)
	if err != nil {
		return nil, err
	}
	prev := make([]Sealer, 0, len(previous))
	for i, k := range previous {
		s, err := NewAESGCM(k)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		prev = append(prev, s)
	}
	return NewKeyRing(p, prev...)
}

// Seal encrypts plaintext with the primary Sealer.
func (r *KeyRing) Seal(plaintext []byte) ([]byte, error) {
	return r.sealers[0].Seal(plaintext)
}

// Open decrypts ciphertext with the first Sealer that can. It returns
// ErrDecrypt when none can.
func (r *KeyRing) Open(ciphertext []byte) ([]byte, error) {
	var first error
	for _, s := range r.sealers {
		out, err := s.Open(ciphertext)
		if err == nil {
			return out, nil
		}
		if first == nil {
			first = err
		}
	}
	if errors.Is(first, ErrDecrypt) {
		return nil, first
	}
	return nil, fmt.Errorf("%w: %v", ErrDecrypt, first)
}

// Reseal rewrites every connection of s, so that a Storage that
// seals with a KeyRing stores each connection's credentials under the
// ring's primary key. It returns how many connections it rewrote.
//
// Every connection is read (and so decrypted) before the first is
// written: when one cannot be opened, the error wraps ErrDecrypt and
// nothing has changed. Running gateways see the rewrite as a configuration
// change and reload; a gateway that cannot open the new key keeps serving
// its last snapshot. Connections changed by someone else between the read
// and the write lose that change, so do not edit connections meanwhile.
func Reseal(ctx context.Context, s llmproxy.Storage) (int, error) {
	conns, err := s.Connections(ctx, llmproxy.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("reading connections: %w", err)
	}
	for i := range conns {
		c := &conns[i]
		if err := s.UpdateConnection(ctx, c); err != nil {
			return i, fmt.Errorf("re-encrypting connection %q: %w", c.Name, err)
		}
	}
	return len(conns), nil
}
