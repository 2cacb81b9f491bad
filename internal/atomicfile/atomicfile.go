// Package atomicfile replaces imago's state files whole or not at all, through
// github.com/google/renameio/v2.
package atomicfile

import (
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Write replaces path with data: a temporary file in path's directory, fsynced,
// then renamed over path, so readers see the old or the new content, never a
// mix. The file is 0600 whatever the umask or the mode of the file it replaces:
// imago's state is its user's alone. On error path is left as it was.
func Write(path string, data []byte) error {
	// WithTempDir keeps the temporary file beside path (renameio would otherwise
	// try $TMPDIR first); WithStaticPermissions ignores the umask and an older
	// file's mode (renameio.WriteFile would copy that mode).
	f, err := renameio.NewPendingFile(path,
		renameio.WithTempDir(filepath.Dir(path)),
		renameio.WithStaticPermissions(0o600))
	if err != nil {
		return err
	}
	defer f.Cleanup() // a no-op once replaced
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}
