package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// entry is one member of a hand-made archive.
type entry struct {
	hdr  tar.Header
	body string
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755}}
}
func file(name, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}
func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// tarGz writes entries as a tar.gz, whatever they say: the archives an attacker
// would write, not the ones Pack makes.
func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := e.hdr
		if hdr.Format == tar.FormatUnknown {
			hdr.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a host for one unpack: base/images (where images are unpacked, as
// $IMAGO_HOME/images) next to base/outside, which holds a file and must never change.
type sandbox struct {
	t       testing.TB
	base    string
	images  string
	outside string
	before  []string // listing of base before the unpack
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	base := t.TempDir()
	t.Cleanup(func() { removeTree(base) }) // read-only image trees, for a non-root t.TempDir
	s := &sandbox{t: t, base: base, images: filepath.Join(base, "images"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{s.images, s.outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.outside, "passwd"), []byte("root:x:0:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.before = listing(t, base)
	return s
}

func (s *sandbox) dest() string { return filepath.Join(s.images, "img-000000000001") }

func (s *sandbox) unpack(data []byte, lim Limits) error {
	return Unpack(bytes.NewReader(data), s.dest(), Digest(data), lim)
}

// listing describes every path under root (names, kinds, modes, link targets,
// sizes), for comparing a tree before and after.
func listing(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v %d", rel, fi.Mode(), fi.Size())
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		if fi.IsDir() {
			line = fmt.Sprintf("%s %v", rel, fi.Mode())
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertUntouched checks that nothing outside images changed (modes included),
// and that images holds nothing (no half-unpacked tree, no temporary file) but,
// when image is set, the image.
func (s *sandbox) assertUntouched(image bool) {
	s.t.Helper()
	want := s.before
	var got []string
	img := filepath.Join("images", filepath.Base(s.dest()))
	for _, line := range listing(s.t, s.base) {
		if image && (strings.HasPrefix(line, img+" ") || strings.HasPrefix(line, img+"/")) {
			continue
		}
		got = append(got, line)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		s.t.Errorf("the sandbox is\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if data, err := os.ReadFile(filepath.Join(s.outside, "passwd")); err != nil || string(data) != "root:x:0:0\n" {
		s.t.Errorf("outside/passwd = %q, %v", data, err)
	}
}

func TestPackThenUnpackKeepsTheTreeReadOnly(t *testing.T) {
	src := t.TempDir()
	for name, body := range map[string]string{"app": "#!/bin/sh\necho hi\n", "releases/v1/conf.ini": "port=0\n", "static/index.html": "<p>hi</p>"} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "app"), 0o4755); err != nil { // setuid: not carried
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"current": "releases/v1", "static/conf": "../current/conf.ini", "static/self": "."} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := Pack(src)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Pack(src)
	if err != nil || !bytes.Equal(data, again) {
		t.Fatalf("packing the same tree twice gave different bytes (%v)", err)
	}

	s := newSandbox(t)
	if err := s.unpack(data, Limits{}); err != nil {
		t.Fatal(err)
	}
	s.assertUntouched(true)
	got := strings.Join(listing(t, s.dest()), "\n")
	want := strings.Join([]string{
		". dr-x------",
		"app -r-x------ 18",
		"current Lrwxrwxrwx 11 -> releases/v1",
		"empty dr-x------",
		"releases dr-x------",
		"releases/v1 dr-x------",
		"releases/v1/conf.ini -r-------- 7",
		"static dr-x------",
		"static/conf Lrwxrwxrwx 19 -> ../current/conf.ini",
		"static/index.html -r-------- 9",
		"static/self Lrwxrwxrwx 1 -> .",
	}, "\n")
	if got != want {
		t.Errorf("unpacked tree:\n%s\nwant:\n%s", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(s.dest(), "static", "conf")); err != nil || string(b) != "port=0\n" {
		t.Errorf("static/conf through its links = %q, %v", b, err)
	}
}

// malicious are archives Unpack refuses, each with what the refusal says. The fuzz
// target starts from them too.
func malicious(t testing.TB) []struct {
	name string
	data []byte
	lim  Limits
	want string
} {
	hugeHeaders := make([]entry, 4)
	for i := range hugeHeaders {
		hugeHeaders[i] = file(fmt.Sprintf("f%d", i), "")
		hugeHeaders[i].hdr.PAXRecords = map[string]string{"comment": strings.Repeat("x", 24<<10)}
	}
	var bomb bytes.Buffer // 1 KB of gzip declaring a 10 GB file of zeros
	gz := gzip.NewWriter(&bomb)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: 10 << 30}); err != nil {
		t.Fatal(err)
	}
	tw.Write(make([]byte, 1024))
	gz.Close() // not tw.Close: the 10 GB are not there
	return []struct {
		name string
		data []byte
		lim  Limits
		want string
	}{
		{"symlink to ..", tarGz(t, symlink("up", "..")), Limits{}, `symlink "up" → ".." leads outside the image`},
		{"symlink to /etc/passwd", tarGz(t, symlink("passwd", "/etc/passwd")), Limits{}, `symlink "passwd" points to the absolute path "/etc/passwd"`},
		{"chain of links leaving the tree", tarGz(t, dir("d"), symlink("d/l1", ".."), symlink("l2", "d/l1/.."), file("x", "")), Limits{},
			`symlink "l2" → "d/l1/.." leads outside the image`},
		{"chain of links declared out of order", tarGz(t, symlink("a", "b/../.."), dir("b"), symlink("b/c", "."), symlink("e", "b/c/../..")), Limits{},
			`symlink "a" → "b/../.." leads outside the image`},
		{"loop of links", tarGz(t, symlink("a", "b"), symlink("b", "a")), Limits{}, `the chain of links is longer than 40 (a loop?)`},
		{"write through a symlink", tarGz(t, symlink("l", "."), file("l/x", "pwned")), Limits{}, `"l/x": its parent "l" is not a directory`},
		{"write through a symlink to outside", tarGz(t, dir("d"), file("d/../../outside/passwd", "pwned")), Limits{}, `entry "d/../../outside/passwd" is not a clean path inside the image`},
		{"hard link", tarGz(t, file("f", "x"), entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "/etc/passwd"}}), Limits{},
			`"h" is a hard link (to "/etc/passwd")`},
		{"dot-dot directory", tarGz(t, dir("..")), Limits{}, `entry "../" is not a clean path inside the image`},
		{"dot-dot file", tarGz(t, file("../outside/passwd", "pwned")), Limits{}, `entry "../outside/passwd" is not a clean path inside the image`},
		{"absolute file", tarGz(t, file("/tmp/pwned", "pwned")), Limits{}, `entry "/tmp/pwned" is not a clean path inside the image`},
		{"unclean name", tarGz(t, file("./a", "")), Limits{}, `entry "./a" is not a clean path inside the image`},
		{"file before its directory", tarGz(t, file("d/x", "")), Limits{}, `"d/x" comes before its directory "d"`},
		{"same name twice", tarGz(t, file("a", "1"), file("a", "2")), Limits{}, `"a" appears twice`},
		{"fifo", tarGz(t, entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o644}}), Limits{}, `"p" is of tar type '6'`},
		{"device", tarGz(t, entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3}}), Limits{}, `"null" is of tar type '3'`},
		{"directory with content", dirWithContent(t), Limits{}, `entry "d" declares 4 bytes of content, but only files have content`},
		{"1 KB gzip declaring a 10 GB file", bomb.Bytes(), Limits{}, `file "zeros" declares 10737418240 bytes, more than is left of the limit of 8589934592 bytes (IMAGO_ARCHIVE_MAX_BYTES)`},
		{"headers past the limit", tarGz(t, hugeHeaders...), Limits{MaxBytes: 64 << 10}, `the archive unpacks to more than the limit of 65536 bytes (IMAGO_ARCHIVE_MAX_BYTES)`},
		{"not gzip", []byte("PK\x03\x04 not a tar.gz"), Limits{}, `not a gzip archive`},
	}
}

// dirWithContent is a directory entry declaring content, which archive/tar's
// writer will not write: a file's header, retyped.
func dirWithContent(t testing.TB) []byte {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "d", Mode: 0o755, Size: 4, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("abcd"))
	tw.Close()
	b := raw.Bytes()
	b[156] = tar.TypeDir
	sum := 0
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(b)
	gz.Close()
	return buf.Bytes()
}

func TestUnpackRefusesArchivesThatCouldEscape(t *testing.T) {
	for _, c := range malicious(t) {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			err := s.unpack(c.data, c.lim)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Unpack = %v, want an error containing %q", err, c.want)
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("%v does not match ErrRefused", err)
			}
			if !strings.HasPrefix(err.Error(), "unpack image: ") {
				t.Errorf("%q does not say what failed", err)
			}
			s.assertUntouched(false)
		})
	}
}

func TestUnpackStopsABombAtTheLimit(t *testing.T) {
	t.Run("1 KB declaring 10 GB, default limit", func(t *testing.T) {
		for _, c := range malicious(t) {
			if c.name != "1 KB gzip declaring a 10 GB file" {
				continue
			}
			if len(c.data) > 1200 {
				t.Fatalf("the bomb is %d bytes, want about 1 KB", len(c.data))
			}
			s := newSandbox(t)
			err := s.unpack(c.data, Limits{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Unpack = %v, want %q", err, c.want)
			}
			s.assertUntouched(false)
		}
	})
	t.Run("16 MB of zeros past a 1 MB limit", func(t *testing.T) {
		data := tarGz(t, file("zeros", string(make([]byte, 16<<20))))
		if len(data) > 64<<10 {
			t.Fatalf("the bomb is %d bytes compressed", len(data))
		}
		s := newSandbox(t)
		err := s.unpack(data, Limits{MaxBytes: 1 << 20})
		if want := `file "zeros" declares 16777216 bytes, more than is left of the limit of 1048576 bytes`; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Unpack = %v, want %q", err, want)
		}
		s.assertUntouched(false)
	})
	t.Run("an archive larger than the limit as stored", func(t *testing.T) {
		noise := make([]byte, 64<<10)
		rand.Read(noise)
		data := tarGz(t, file("noise", string(noise)))
		s := newSandbox(t)
		err := s.unpack(data, Limits{MaxBytes: 32 << 10})
		if want := "the archive is larger than the limit of 32768 bytes (IMAGO_ARCHIVE_MAX_BYTES)"; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Unpack = %v, want %q", err, want)
		}
		s.assertUntouched(false)
	})
}

func TestUnpackRefusesMoreEntriesThanTheLimit(t *testing.T) {
	const files = 100_000
	entries := make([]entry, files)
	for i := range entries {
		entries[i] = file(fmt.Sprintf("f%06d", i), "")
		entries[i].hdr.Format = tar.FormatUSTAR // 512 bytes a file
	}
	data := tarGz(t, entries...)
	s := newSandbox(t)
	err := s.unpack(data, Limits{MaxEntries: 1000})
	if want := "the archive holds more than the limit of 1000 entries (IMAGO_ARCHIVE_MAX_ENTRIES)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Unpack = %v, want %q", err, want)
	}
	s.assertUntouched(false)
}

func TestUnpackRemovesWhatACrashedUnpackLeft(t *testing.T) {
	s := newSandbox(t)
	base := filepath.Base(s.dest())
	half := filepath.Join(s.images, "."+base+".unpack-123")
	if err := os.MkdirAll(filepath.Join(half, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "bin", "app"), []byte("half"), 0o500); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(half, "bin"), 0o500)
	if err := os.WriteFile(filepath.Join(s.images, "."+base+".archive-456"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.unpack(tarGz(t, file("app", "v1")), Limits{}); err != nil {
		t.Fatal(err)
	}
	s.assertUntouched(true)
}

func TestUnpackRefusesBytesThatDoNotMatchTheDigest(t *testing.T) {
	good := tarGz(t, file("hello", "v2"))
	swapped := tarGz(t, symlink("passwd", "/etc/passwd")) // not even looked at
	s := newSandbox(t)
	err := Unpack(bytes.NewReader(swapped), s.dest(), Digest(good), Limits{})
	var de *DigestError
	if !errors.As(err, &de) || de.Want != Digest(good) || de.Got != Digest(swapped) || !errors.Is(err, ErrRefused) {
		t.Fatalf("Unpack = %v, want a DigestError matching ErrRefused", err)
	}
	if want := "unpack image: archive does not match its digest (want " + Digest(good); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("%q does not start with %q", err, want)
	}
	s.assertUntouched(false)

	if err := Unpack(bytes.NewReader(good), s.dest(), "md5:abc", Limits{}); err == nil || !strings.Contains(err.Error(), `digest "md5:abc" is not sha256:<64 hex digits>`) {
		t.Errorf("Unpack with a malformed digest = %v", err)
	}
	s.assertUntouched(false)
}

// TestTheRootRefusesEscapesOnItsOwn takes away the entry checks: a link that
// leads out of the tree is already there, and the writes go through it. os.Root
// refuses each one, so nothing lands outside even if the checks had a hole.
func TestTheRootRefusesEscapesOnItsOwn(t *testing.T) {
	s := newSandbox(t)
	tree := filepath.Join(s.images, ".unpack-test")
	if err := os.Mkdir(tree, 0o700); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"up": "../../outside", "abs": s.outside, "chain": "up"} {
		if err := os.Symlink(target, filepath.Join(tree, link)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(tree)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, via := range []string{"up", "abs", "chain"} {
		if err := writeFile(root, via+"/passwd", strings.NewReader("pwned"), 0o400); err == nil {
			t.Errorf("writeFile through %s succeeded", via)
		}
		if err := writeFile(root, via+"/new", strings.NewReader("pwned"), 0o400); err == nil {
			t.Errorf("writeFile of a new file through %s succeeded", via)
		}
		if err := root.Mkdir(via+"/d", 0o700); err == nil {
			t.Errorf("Mkdir through %s succeeded", via)
		}
		if err := root.Symlink("x", via+"/l"); err == nil {
			t.Errorf("Symlink through %s succeeded", via)
		}
		if err := root.Chmod(via, 0o500); err == nil {
			t.Errorf("Chmod of %s succeeded", via)
		}
	}
	if err := root.Mkdir("..", 0o700); err == nil {
		t.Error("Mkdir of .. succeeded")
	}
	if err := root.Chmod("..", 0o500); err == nil {
		t.Error("Chmod of .. succeeded")
	}
	os.RemoveAll(tree)
	s.assertUntouched(false)
}

func TestPackRefusesLinksThatLeaveTheTree(t *testing.T) {
	for _, c := range []struct {
		name  string
		links [][2]string // name, target, in the order made
		want  string
	}{
		{"to ..", [][2]string{{"up", ".."}}, `symlink "up" → ".." leads outside the image`},
		{"absolute", [][2]string{{"passwd", "/etc/passwd"}}, `symlink "passwd" points to the absolute path "/etc/passwd"`},
		{"chain", [][2]string{{"d/l1", ".."}, {"l2", "d/l1/.."}}, `symlink "l2" → "d/l1/.." leads outside the image`},
		{"loop", [][2]string{{"a", "b"}, {"b", "a"}}, "the chain of links is longer than 40"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, l := range c.links {
				if err := os.Symlink(l[1], filepath.Join(src, l[0])); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Pack(src)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "pack image: ") {
				t.Fatalf("Pack = %v, want %q", err, c.want)
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("%v does not match ErrRefused", err)
			}
		})
	}
}

func TestLimitsFromEnv(t *testing.T) {
	t.Setenv(EnvMaxBytes, "")
	t.Setenv(EnvMaxEntries, "")
	if l, err := LimitsFromEnv(); err != nil || l.WithDefaults() != (Limits{MaxBytes: 8 << 30, MaxEntries: 1_000_000}) {
		t.Errorf("unset: %+v, %v", l, err)
	}
	t.Setenv(EnvMaxBytes, "1048576")
	t.Setenv(EnvMaxEntries, "10")
	if l, err := LimitsFromEnv(); err != nil || l != (Limits{MaxBytes: 1 << 20, MaxEntries: 10}) {
		t.Errorf("set: %+v, %v", l, err)
	}
	t.Setenv(EnvMaxBytes, "9223372036854775807") // no limit, in effect
	if l, err := LimitsFromEnv(); err != nil || l.WithDefaults().MaxBytes != 1<<62 {
		t.Errorf("max int64: %+v, %v", l, err)
	}
	s := newSandbox(t)
	if err := s.unpack(tarGz(t, file("app", "v1")), Limits{MaxBytes: 1<<63 - 1}); err != nil {
		t.Errorf("Unpack under the largest limit: %v", err)
	}
	t.Setenv(EnvMaxBytes, "8GiB")
	if _, err := LimitsFromEnv(); err == nil || !strings.Contains(err.Error(), `IMAGO_ARCHIVE_MAX_BYTES: "8GiB" is not a positive number of bytes`) {
		t.Errorf("8GiB: %v", err)
	}
	t.Setenv(EnvMaxBytes, "")
	t.Setenv(EnvMaxEntries, "-1")
	if _, err := LimitsFromEnv(); err == nil || !strings.Contains(err.Error(), `IMAGO_ARCHIVE_MAX_ENTRIES: "-1" is not a positive number of entries`) {
		t.Errorf("-1: %v", err)
	}
}

// FuzzUnpack feeds the archive reader anything. The input is a tar stream, gzipped
// here so that mutations reach the tar reader and the entry checks rather than
// gzip's checksum; with raw set it is the archive as is. Its digest always
// matches: the catalog is not what is fuzzed here. Whatever it is, nothing
// outside the images directory changes, nothing but the image is left in it, and
// an image it accepts holds only read-only files and directories and links that
// stay inside.
func FuzzUnpack(f *testing.F) {
	seeds := [][]byte{tarGz(f, dir("bin"), file("bin/app", "#!/bin/sh\n"), symlink("app", "bin/app"), dir("empty"))}
	for _, c := range malicious(f) {
		seeds = append(seeds, c.data)
	}
	for _, data := range seeds {
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if stream, err := io.ReadAll(zr); err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
				f.Add(stream, false)
				continue
			}
		}
		f.Add(data, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		if !raw {
			var buf bytes.Buffer
			gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			gz.Write(data)
			gz.Close()
			data = buf.Bytes()
		}
		s := newSandbox(t)
		err := s.unpack(data, Limits{MaxBytes: 64 << 10, MaxEntries: 1000})
		s.assertUntouched(err == nil)
		if err != nil {
			return
		}
		root, rerr := os.OpenRoot(s.dest())
		if rerr != nil {
			t.Fatal(rerr)
		}
		defer root.Close()
		var names []string
		filepath.WalkDir(s.dest(), func(p string, d fs.DirEntry, err error) error {
			if err == nil && p != s.dest() {
				rel, _ := filepath.Rel(s.dest(), p)
				names = append(names, rel)
			}
			return nil
		})
		sort.Strings(names)
		for _, name := range names {
			fi, err := root.Lstat(name)
			if err != nil {
				t.Fatal(err)
			}
			switch m := fi.Mode(); {
			case m&fs.ModeSymlink != 0:
				target, _ := root.Readlink(name)
				if filepath.IsAbs(target) {
					t.Errorf("%s is an absolute link to %s", name, target)
				}
				if _, err := root.Stat(name); err != nil && strings.Contains(err.Error(), "escapes") {
					t.Errorf("%s → %s leads outside the image: %v", name, target, err)
				}
			case m.IsDir():
				if m.Perm() != 0o500 {
					t.Errorf("directory %s has mode %v", name, m)
				}
			case m.IsRegular():
				if p := m.Perm(); (p != 0o400 && p != 0o500) || m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
					t.Errorf("file %s has mode %v", name, m)
				}
			default:
				t.Errorf("%s is a %v", name, m.Type())
			}
		}
	})
}
