// Package secret seals secrets at rest: the Sealer interface storage
// backends encrypt Connection.Credentials with, an AES-256-GCM Sealer, a
// KeyRing for rotating the key, and the ENCRYPTION_KEY and key-file forms
// of a key. The Gateway itself never sees sealed data: backends open
// credentials when they read a connection.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
)

// Sealer encrypts and decrypts secrets at rest. Storage backends seal
// Connection.Credentials with it.
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(ciphertext []byte) ([]byte, error)
}

// AESGCM is a Sealer using AES-256-GCM with a random nonce per message.
type AESGCM struct {
	aead cipher.AEAD
}

// NewAESGCM returns a Sealer for a 32-byte key.
func NewAESGCM(key []byte) (*AESGCM, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: encryption key must be 32 bytes, got %d", llmproxy.ErrInvalid, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &AESGCM{aead: aead}, nil
}

const sealVersion = 1

// Seal encrypts plaintext as version byte, nonce, ciphertext.
func (s *AESGCM) Seal(plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[1:], plaintext, nil), nil
}

// ErrDecrypt is returned when a sealed secret cannot be opened, most often
// because the encryption key is not the one it was sealed with.
var ErrDecrypt = errors.New("cannot decrypt stored secret (wrong ENCRYPTION_KEY?)")

// Open decrypts what Seal produced.
func (s *AESGCM) Open(ciphertext []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(ciphertext) < 1+n || ciphertext[0] != sealVersion {
		return nil, ErrDecrypt
	}
	out, err := s.aead.Open(nil, ciphertext[1:1+n], ciphertext[1+n:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// ParseKey turns the ENCRYPTION_KEY setting into a 32-byte key:
// 64 hex characters or standard base64 of 32 bytes are used as they are;
// any other non-empty text is a passphrase hashed with SHA-256.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty encryption key", llmproxy.ErrInvalid)
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	sum := sha256.Sum256([]byte(s))
	return sum[:], nil
}

// LoadOrCreateKeyFile reads a 32-byte key stored hex-encoded at path, or
// creates the file with a new random key and mode 0600 when it does not
// exist.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("key file %s is corrupt: want 64 hex characters", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process created it first
		return LoadOrCreateKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// sealedCredentials is the stored form of Credentials before sealing.
type sealedCredentials struct {
	APIKey          string `json:"api_key,omitempty"`
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey string `json:"secret_access_key,omitempty"`
	SessionToken    string `json:"session_token,omitempty"`
}

// SealCredentials encrypts c with s for storage. Zero credentials seal to
// nil.
func SealCredentials(s Sealer, c llmproxy.Credentials) ([]byte, error) {
	if c.IsZero() {
		return nil, nil
	}
	if s == nil {
		return nil, errors.New("secret: no Sealer to encrypt credentials")
	}
	b, err := json.Marshal(sealedCredentials(c))
	if err != nil {
		return nil, err
	}
	return s.Seal(b)
}

// OpenCredentials decrypts what SealCredentials produced.
func OpenCredentials(s Sealer, sealed []byte) (llmproxy.Credentials, error) {
	if len(sealed) == 0 {
		return llmproxy.Credentials{}, nil
	}
	if s == nil {
		return llmproxy.Credentials{}, errors.New("secret: no Sealer to decrypt credentials")
	}
	b, err := s.Open(sealed)
	if err != nil {
		return llmproxy.Credentials{}, err
	}
	var sc sealedCredentials
	if err := json.Unmarshal(b, &sc); err != nil {
		return llmproxy.Credentials{}, ErrDecrypt
	}
	return llmproxy.Credentials(sc), nil
}
