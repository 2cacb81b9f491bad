// Package atomicfile writes imago's state files whole or not at all: Write
// replaces a file (through github.com/google/renameio/v2), Create makes one that
// must not be replaced.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Write replaces path with data: a temporary file in path's directory, fsynced,
// then renamed over path, so readers see the old or the new content, never a
// mix. The file is 0600 whatever the umask or the mode of the file it replaces:
// imago's state is its user's alone. On error path is left as it was.
func Write(path string, data []byte) error {
	return WriteFunc(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc is Write for content that write streams (a large archive): path is
// replaced only when write returns nil.
func WriteFunc(path string, write func(io.Writer) error) error {
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
	if err := write(f); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

// Create writes data to path unless path exists. The complete file (0600,
// fsynced) is written under a temporary name in tmpDir, which must be on path's
// file system, and hard-linked into place: link(2) fails atomically when path
// exists, so the first writer wins whole and readers never see a partial file.
// (renameio cannot: a rename replaces.) When path exists the error satisfies
// errors.Is(err, fs.ErrExist); other link errors come back as they are, for a
// caller that must tell a file system without hard links.
func Create(path, tmpDir string, data []byte) error {
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = f.Chmod(0o600) // CreateTemp's mode already; said here, it must hold
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}
