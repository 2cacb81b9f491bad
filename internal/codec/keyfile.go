package codec

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imago/imago/internal/atomicfile"
)

// KeyFileName is the file under $IMAGO_HOME that holds the default keeper URL.
const KeyFileName = "secrets.url"

// SecretsURL returns the keeper URL to use: secretsURL when set
// (IMAGO_SECRETS_URL), otherwise the base64key:// URL in home/secrets.url. The
// file is created on first use with a fresh random key and mode 0600, atomically
// (written aside, then linked into place), and never overwritten: a second
// process, or one racing this one, reads the same key.
func SecretsURL(secretsURL, home string) (string, error) {
	if secretsURL != "" {
		return secretsURL, nil
	}
	if home == "" {
		return "", errors.New("codec: neither IMAGO_SECRETS_URL nor IMAGO_HOME is set; set one so the payload key has a home")
	}
	path := filepath.Join(home, KeyFileName)
	if u, err := readKeyFile(path); err == nil {
		return u, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := createKeyFile(path); err != nil {
		return "", err
	}
	return readKeyFile(path)
}

func readKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("codec: read the payload key file %s: %w", path, err)
	}
	u := strings.TrimSpace(string(b))
	if u == "" {
		return "", fmt.Errorf("codec: the payload key file %s is empty; it should hold a keeper URL such as base64key://KEY. "+
			"If no payload was written with it, delete it and a new key is made; otherwise restore it from a backup", path)
	}
	return u, nil
}

// createKeyFile writes a new key to path unless path exists; losing a race to
// another process is not an error (that process's key is then read).
func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("codec: create %s for the payload key file: %w", dir, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("codec: draw a payload key: %w", err)
	}
	content := "base64key://" + base64.URLEncoding.EncodeToString(key) + "\n"
	// Create-only: when another process made the file first, its key wins, complete.
	if err := atomicfile.Create(path, dir, []byte(content)); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("codec: create the payload key file %s: %w", path, err)
	}
	return nil
}
