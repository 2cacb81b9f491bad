// Package image is the format of a local imago image: a deterministic tar.gz of a
// directory tree (sorted entries, zero times, no owners), so the same tree always
// yields the same bytes and therefore the same content address.
//
// An image holds files, directories and relative symlinks that stay inside it;
// Pack refuses to make anything else and Unpack to extract it, after checking the
// archive against its digest and within Limits (see docs/security.md, "Image archives").
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Pack archives the tree under dir. Regular files keep their executable bit;
// symlinks are kept as links when they are relative and stay inside the tree,
// also when followed through the tree's other links; any other link is refused
// (ErrRefused) with its path, as is anything but files, directories and symlinks.
func Pack(dir string) ([]byte, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("pack image: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("pack image: %s is not a directory", dir)
	}
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pack image %s: %w", dir, err)
	}
	sort.Strings(paths)

	// Every entry's header first: the links are checked against the whole tree
	// before any content is read.
	t := newTree()
	hdrs := make([]*tar.Header, 0, len(paths))
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		name := filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: name, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, filepath.ToSlash(target), 0o777
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), 0o644
			if fi.Mode()&0o111 != 0 {
				hdr.Mode = 0o755
			}
		default:
			return nil, refuse("pack image: %s is not a regular file, directory or symlink", name)
		}
		if err := t.add(name, hdr.Typeflag, hdr.Linkname); err != nil {
			return nil, fmt.Errorf("pack image: %w", err)
		}
		hdrs = append(hdrs, hdr)
	}
	if err := t.checkLinks(); err != nil {
		return nil, fmt.Errorf("pack image: %w", err)
	}

	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	tw := tar.NewWriter(gz)
	for i, hdr := range hdrs {
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(paths[i])
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("pack image: %s: %w", hdr.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Digest is the content address of an archive: "sha256:<hex>".
func Digest(archive []byte) string {
	sum := sha256.Sum256(archive)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ID derives the short image ID users see ("img-" + 12 hex digits) from what makes
// an image: its archive's digest, its service and its entrypoint.
func ID(digest, service string, entrypoint []string) string {
	sum := sha256.Sum256([]byte(digest + "\x00" + service + "\x00" + strings.Join(entrypoint, "\x00")))
	return "img-" + hex.EncodeToString(sum[:])[:12]
}
