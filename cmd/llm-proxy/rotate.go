package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/secret"
)

// envPreviousKeys names the variable listing old encryption keys that can
// still decrypt, comma-separated.
const envPreviousKeys = "ENCRYPTION_KEY_PREVIOUS"

func newRotateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-encryption-key",
		Short: "Re-encrypt every provider secret under a new ENCRYPTION_KEY",
		Long: `Re-encrypt every stored provider credential under ENCRYPTION_KEY (the new key),
reading them with ENCRYPTION_KEY_PREVIOUS (the old key; several, comma-separated,
are allowed). Every connection is read before the first is written: if one
cannot be decrypted, nothing changes. Afterwards the new key alone is checked
to open every connection.

Without downtime:
  1. Restart the servers, one at a time, with ENCRYPTION_KEY=<new> and
     ENCRYPTION_KEY_PREVIOUS=<old>: they read secrets under either key.
  2. Run this command with the same two variables.
  3. Restart the servers with ENCRYPTION_KEY=<new> alone; forget the old key.
A server still on the old key alone keeps serving what it had loaded, but
takes no configuration change until it is restarted with the new key.`,
		Example: `  ENCRYPTION_KEY=$(openssl rand -hex 32) ENCRYPTION_KEY_PREVIOUS=$OLD_KEY llm-proxy rotate-encryption-key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if e.getenv("ENCRYPTION_KEY") == "" || e.getenv(envPreviousKeys) == "" {
				return errors.New("rotate-encryption-key needs ENCRYPTION_KEY (the new key) and ENCRYPTION_KEY_PREVIOUS (the old one)")
			}
			n := 0
			err := e.admin(ctx, func(a *admin.Service) error {
				var err error
				n, err = secret.Reseal(ctx, a.Storage)
				return err
			})
			if err != nil {
				return err
			}
			// Check that the new key alone opens everything.
			only := *e
			only.getenv = func(k string) string {
				if k == envPreviousKeys {
					return ""
				}
				return e.getenv(k)
			}
			err = only.admin(ctx, func(a *admin.Service) error {
				_, err := a.Storage.Connections(ctx, llmproxy.ListOptions{})
				return err
			})
			if err != nil {
				return fmt.Errorf("re-encrypted %d connections, but the new key alone cannot open them all: %w", n, err)
			}
			return printf(e.stdout, "Re-encrypted %d connections under the new ENCRYPTION_KEY; it alone opens them all.\nRestart every server with ENCRYPTION_KEY alone, then forget the previous key.\n", n)
		},
	}
}

// previousKeys parses ENCRYPTION_KEY_PREVIOUS: encryption keys separated
// by commas, as ENCRYPTION_KEY accepts them.
func previousKeys(v string) ([][]byte, error) {
	var keys [][]byte
	for i, s := range strings.Split(v, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := secret.ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("%s key %d: %w", envPreviousKeys, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// withPreviousKeys returns a Sealer for key that also opens what the keys
// of ENCRYPTION_KEY_PREVIOUS sealed, or the plain AES-GCM Sealer when that
// variable is empty.
func (e *env) withPreviousKeys(key []byte) (secret.Sealer, error) {
	prev, err := previousKeys(e.getenv(envPreviousKeys))
	if err != nil {
		return nil, err
	}
	if len(prev) == 0 {
		return secret.NewAESGCM(key)
	}
	return secret.NewAESGCMKeyRing(key, prev...)
}
