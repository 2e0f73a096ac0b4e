package llmproxy

import (
	"context"
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
)

// Storage is the configuration store and usage ledger behind a Gateway.
// The Gateway only reads configuration through it in the background (into
// an in-memory snapshot) and appends usage in batches; the admin writes are
// used by the CLI and the admin API.
//
// Implementations must be safe for concurrent use, by several goroutines and
// by several processes sharing one database. Errors are wrapped sentinels:
// ErrNotFound for a missing record (or a missing record it refers to),
// ErrAlreadyExists for a duplicate unique name, ErrInUse for a delete that
// would leave dangling references, ErrInvalid for a record whose Validate
// fails. Create methods set ID (when empty), CreatedAt and UpdatedAt on the
// record passed in; Update methods set UpdatedAt.
//
// No operation relies on a multi-record transaction for correctness: a
// virtual key and its assignments form one record, and usage is an
// append-only ledger.
type Storage interface {
	// CreateConnection stores a new connection. Names are unique.
	CreateConnection(ctx context.Context, c *Connection) error
	// Connection returns the connection with the given ID.
	Connection(ctx context.Context, id string) (*Connection, error)
	// Connections lists connections in ID order.
	Connections(ctx context.Context, opts ListOptions) ([]Connection, error)
	// UpdateConnection replaces the stored connection with c.ID.
	UpdateConnection(ctx context.Context, c *Connection) error
	// DeleteConnection deletes a connection that no model or assignment
	// refers to (ErrInUse otherwise).
	DeleteConnection(ctx context.Context, id string) error

	// CreateModel stores a new model. Its connection must exist. The pair
	// (Name, ConnectionID) is unique: one alias may exist on several
	// connections, once on each.
	CreateModel(ctx context.Context, m *Model) error
	// Model returns the model with the given ID.
	Model(ctx context.Context, id string) (*Model, error)
	// Models lists models in ID order.
	Models(ctx context.Context, opts ListOptions) ([]Model, error)
	// UpdateModel replaces the stored model with m.ID.
	UpdateModel(ctx context.Context, m *Model) error
	// DeleteModel deletes a model that no assignment refers to.
	DeleteModel(ctx context.Context, id string) error

	// CreateKey stores a new virtual key with its assignments, whose
	// connections and models must exist. Names and hashes are unique.
	// Assignments without an ID get one.
	CreateKey(ctx context.Context, k *VirtualKey) error
	// Key returns the key with the given ID.
	Key(ctx context.Context, id string) (*VirtualKey, error)
	// Keys lists keys in ID order.
	Keys(ctx context.Context, opts ListOptions) ([]VirtualKey, error)
	// UpdateKey replaces the stored key with k.ID, assignments included,
	// in one atomic write.
	UpdateKey(ctx context.Context, k *VirtualKey) error
	// DeleteKey deletes a key. Its usage records stay.
	DeleteKey(ctx context.Context, id string) error

	// ConfigVersion returns an opaque stamp that changes whenever any
	// connection, model or key changes, by this process or another. It is
	// polled often, so it must be cheap.
	ConfigVersion(ctx context.Context) (string, error)

	// AppendUsage appends records to the ledger. Records whose ID is
	// already stored are skipped, so a retried batch is stored once.
	AppendUsage(ctx context.Context, records []UsageRecord) error
	// SumUsage sums the records that f selects, grouped by key and model
	// alias, ordered by key then model.
	SumUsage(ctx context.Context, f UsageFilter) ([]UsageSummary, error)

	// Close releases the store's resources.
	Close() error
}

// ListOptions pages through a listing. The zero value lists everything.
type ListOptions struct {
	// After, when set, starts the listing after the record with this ID.
	After string
	// Limit caps the number of records; zero means no limit.
	Limit int
}

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
		return nil, fmt.Errorf("%w: encryption key must be 32 bytes, got %d", ErrInvalid, len(key))
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

// ParseEncryptionKey turns the ENCRYPTION_KEY setting into a 32-byte key:
// 64 hex characters or standard base64 of 32 bytes are used as they are;
// any other non-empty text is a passphrase hashed with SHA-256.
func ParseEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty encryption key", ErrInvalid)
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
func SealCredentials(s Sealer, c Credentials) ([]byte, error) {
	if c.IsZero() {
		return nil, nil
	}
	if s == nil {
		return nil, errors.New("llmproxy: no Sealer to encrypt credentials")
	}
	b, err := json.Marshal(sealedCredentials(c))
	if err != nil {
		return nil, err
	}
	return s.Seal(b)
}

// OpenCredentials decrypts what SealCredentials produced.
func OpenCredentials(s Sealer, sealed []byte) (Credentials, error) {
	if len(sealed) == 0 {
		return Credentials{}, nil
	}
	if s == nil {
		return Credentials{}, errors.New("llmproxy: no Sealer to decrypt credentials")
	}
	b, err := s.Open(sealed)
	if err != nil {
		return Credentials{}, err
	}
	var sc sealedCredentials
	if err := json.Unmarshal(b, &sc); err != nil {
		return Credentials{}, ErrDecrypt
	}
	return Credentials(sc), nil
}
