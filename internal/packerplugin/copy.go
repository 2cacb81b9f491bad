package packerplugin

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// copyTree copies src to dst (which must not exist yet, though its parent
// must). Inside the tree, symlinks are copied as links; the top of the tree is
// followed when followTop is set, so a listed symlink brings its target's
// content. What image.Pack looks at survives the copy: names, types, contents,
// link targets and the executable bit. Copies are owner-writable so provision
// commands can change them.
func copyTree(ctx context.Context, src, dst string, followTop bool) error {
	stat := os.Lstat
	if followTop {
		stat = os.Stat
	}
	fi, err := stat(src)
	if err != nil {
		return err
	}
	return copyEntry(ctx, src, dst, fi)
}

func copyEntry(ctx context.Context, src, dst string, fi fs.FileInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				return err
			}
			if err := copyEntry(ctx, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), info); err != nil {
				return err
			}
		}
		return nil
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.Mode().IsRegular():
		return copyFile(src, dst, fi.Mode().Perm()|0o600)
	default:
		return fmt.Errorf("%s is not a regular file, directory or symlink", src)
	}
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The umask may have dropped bits (the executable ones matter).
	return os.Chmod(dst, perm)
}

// forceRemoveAll removes dir even when a provision command made parts of it
// read-only.
func forceRemoveAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
