package image

import (
	"archive/tar"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// Limits bound what Unpack accepts from one archive. A zero field takes its default.
type Limits struct {
	// MaxBytes bounds the archive as stored and as unpacked (file contents and tar
	// headers): default DefaultMaxBytes, env IMAGO_ARCHIVE_MAX_BYTES.
	MaxBytes int64
	// MaxEntries bounds its files, directories and symlinks together: default
	// DefaultMaxEntries, env IMAGO_ARCHIVE_MAX_ENTRIES.
	MaxEntries int
}

// The defaults are generous for real applications: a large Python environment with
// ML libraries weighs 3-6 GB, a big node_modules 100k-500k files. A bomb (10 GB of
// zeros in 10 MB) or a flood of millions of tiny files passes them.
const (
	DefaultMaxBytes   int64 = 8 << 30 // 8 GiB
	DefaultMaxEntries       = 1_000_000
)

// The environment variables of LimitsFromEnv.
const (
	EnvMaxBytes   = "IMAGO_ARCHIVE_MAX_BYTES"
	EnvMaxEntries = "IMAGO_ARCHIVE_MAX_ENTRIES"
)

// LimitsFromEnv reads IMAGO_ARCHIVE_MAX_BYTES and IMAGO_ARCHIVE_MAX_ENTRIES
// (positive integers; unset or empty: the defaults).
func LimitsFromEnv() (Limits, error) {
	var l Limits
	if v := os.Getenv(EnvMaxBytes); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return l, fmt.Errorf("%s: %q is not a positive number of bytes (e.g. 17179869184 for 16 GiB)", EnvMaxBytes, v)
		}
		l.MaxBytes = n
	}
	if v := os.Getenv(EnvMaxEntries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return l, fmt.Errorf("%s: %q is not a positive number of entries (e.g. 2000000)", EnvMaxEntries, v)
		}
		l.MaxEntries = n
	}
	return l, nil
}

// WithDefaults fills zero fields with the defaults and bounds MaxBytes so that
// one byte past it (what tells "more") still counts.
func (l Limits) WithDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	l.MaxBytes = min(l.MaxBytes, 1<<62) // room for the one byte past it that tells "more"
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// DigestError says that an archive's bytes are not the ones its digest names.
// It matches ErrRefused.
type DigestError struct {
	Want string // the digest the archive was to match
	Got  string // the digest of the bytes read
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("archive does not match its digest (want %s, got %s)", e.Want, e.Got)
}

func (e *DigestError) Is(target error) bool { return target == ErrRefused }

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Unpack extracts an archive made by Pack into dest, which must not exist yet.
//
// Nothing of the archive is parsed before all of it is read (into a temporary
// file beside dest) and found to match digest; a mismatch is a *DigestError.
// The tree is then extracted into a temporary directory beside dest through an
// os.Root, and renamed into place only once complete, so dest never holds a
// half-unpacked or refused tree. Refused (errors.Is ErrRefused): entries whose
// name is not a clean relative path, an entry under anything but a directory of
// the archive, a name twice, absolute symlinks and symlinks that lead out of the
// tree (alone or through other links), hard links and every other kind of entry
// than files, directories and symlinks, and an archive past lim. Files and
// directories are made read-only for their owner (0400, or 0500 for directories
// and executables: no setuid, setgid or sticky bit, nothing for others).
//
// Unpacks of one dest must not run at once (the local provider holds a lock per
// image): each starts by removing what an earlier, crashed one left beside dest.
func Unpack(r io.Reader, dest, digest string, lim Limits) error {
	lim = lim.WithDefaults()
	if !digestRE.MatchString(digest) {
		return refuse("unpack image: digest %q is not sha256:<64 hex digits>", digest)
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	prefix := "." + filepath.Base(dest)
	leftovers, _ := filepath.Glob(filepath.Join(parent, prefix+".*-*"))
	for _, l := range leftovers {
		removeTree(l)
	}
	archive, err := spool(r, parent, prefix+".archive-*", digest, lim.MaxBytes)
	if archive != nil {
		defer func() {
			archive.Close()
			os.Remove(archive.Name())
		}()
	}
	if err != nil {
		return fmt.Errorf("unpack image: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, prefix+".unpack-*")
	if err != nil {
		return err
	}
	defer removeTree(tmp) // gone already once renamed
	if err := extract(archive, tmp, lim); err != nil {
		return fmt.Errorf("unpack image: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		if _, statErr := os.Lstat(dest); statErr == nil {
			return nil // another unpack won the race; its tree is identical
		}
		return err
	}
	return os.Chmod(dest, 0o500)
}

// spool copies r into a new temporary file in dir (named after pattern) and
// checks that its bytes match digest. The file is returned (rewound on success)
// for the caller to remove.
func spool(r io.Reader, dir, pattern, digest string, max int64) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, max+1))
	switch {
	case err != nil:
		return f, fmt.Errorf("read archive: %w", err)
	case n > max:
		return f, refuse("the archive is larger than the limit of %d bytes (%s)", max, EnvMaxBytes)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return f, &DigestError{Want: digest, Got: got}
	}
	_, err = f.Seek(0, io.SeekStart)
	return f, err
}

// extract unpacks the archive in r into the empty directory dir. Every write goes
// through an os.Root on dir, which refuses to follow a link out of it: a second
// wall behind the checks of the entries.
func extract(r io.Reader, dir string, lim Limits) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return refuse("not a gzip archive: %v", err)
	}
	stream := &capReader{r: gz, left: lim.MaxBytes, max: lim.MaxBytes}
	tr := tar.NewReader(stream)
	t := newTree()
	var dirs []string
	for n := 1; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readError(err)
		}
		if n > lim.MaxEntries {
			return refuse("the archive holds more than the limit of %d entries (%s)", lim.MaxEntries, EnvMaxEntries)
		}
		name, err := checkName(hdr)
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Size != 0 {
			// archive/tar would skip (and decompress) the content a header declares.
			return refuse("entry %q declares %d bytes of content, but only files have content", hdr.Name, hdr.Size)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := t.add(name, tar.TypeDir, ""); err != nil {
				return err
			}
			if err := root.Mkdir(name, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, name)
		case tar.TypeSymlink:
			if err := t.add(name, tar.TypeSymlink, hdr.Linkname); err != nil {
				return err
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return err
			}
		case tar.TypeReg:
			if hdr.Size < 0 || hdr.Size > stream.left {
				return refuse("file %q declares %d bytes, more than is left of the limit of %d bytes (%s)", name, hdr.Size, lim.MaxBytes, EnvMaxBytes)
			}
			if err := t.add(name, tar.TypeReg, ""); err != nil {
				return err
			}
			if err := writeFile(root, name, tr, fileMode(hdr.Mode)); err != nil {
				return readError(err)
			}
		case tar.TypeLink:
			return refuse("%q is a hard link (to %q): images hold only files, directories and relative symlinks", name, hdr.Linkname)
		default:
			return refuse("%q is of tar type %q: images hold only files, directories and relative symlinks", name, hdr.Typeflag)
		}
	}
	if err := t.checkLinks(); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := root.Chmod(d, 0o500); err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates name in root (never through an existing entry) with the
// content of r, then gives it mode.
func writeFile(root *os.Root, name string, r io.Reader, mode fs.FileMode) error {
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode) // on the open file: no path to race
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileMode is an unpacked file's mode: read-only, executable when the archive
// says so, and nothing else of the archive's bits.
func fileMode(tarMode int64) fs.FileMode {
	if tarMode&0o111 != 0 {
		return 0o500
	}
	return 0o400
}

// readError makes the archive's own faults (truncated, corrupt) refusals; a limit
// passed already is one.
func readError(err error) error {
	var ref *refusal
	if errors.As(err, &ref) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, gzip.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) || errors.As(err, new(flate.CorruptInputError)) {
		return refuse("corrupt archive: %v", err)
	}
	return err
}

// capReader is the decompressed stream, refused once it passes its limit: tar
// headers (PAX records up to 1 MiB each) count as well as file contents.
type capReader struct {
	r    io.Reader
	left int64
	max  int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.passed()
	}
	if c.left < int64(len(p)) {
		p = p[:c.left+1] // one byte past the limit tells "more" from "exactly"
	}
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left < 0 {
		return n, c.passed()
	}
	return n, err
}

func (c *capReader) passed() error {
	return refuse("the archive unpacks to more than the limit of %d bytes (%s)", c.max, EnvMaxBytes)
}

// removeTree removes dir even where Unpack made it read-only.
func removeTree(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}
