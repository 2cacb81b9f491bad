package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// ErrRefused matches (errors.Is) every error of an archive imago refuses to pack or
// unpack: an entry that could reach outside the image, a kind of entry images do not
// hold, a limit passed, bytes that do not match their digest. Retrying cannot help.
var ErrRefused = errors.New("archive refused")

type refusal struct{ msg string }

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == ErrRefused }

func refuse(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

const (
	// maxLinkHops bounds a chain of symlinks, as Linux does (MAXSYMLINKS).
	maxLinkHops = 40
	// maxPathLen bounds entry names and link targets (Linux's PATH_MAX).
	maxPathLen = 4096
)

// tree is what an image holds, as far as its symlinks are concerned: the kind of
// each entry and the target of each link. Pack and Unpack fill one entry by entry
// (parents first) and check its links once it is complete, because a later link
// can change where an earlier one leads.
type tree struct {
	kinds map[string]byte   // slash-separated relative name -> tar.TypeDir, TypeReg or TypeSymlink
	links map[string]string // symlink name -> target
	order []string          // symlink names in the order they came, for a stable first error
}

func newTree() *tree {
	return &tree{kinds: map[string]byte{}, links: map[string]string{}}
}

// add records an entry. name is clean and relative (see checkName); its parent
// must be a directory recorded before, so that no entry is ever written through
// a symlink. A symlink's target must be relative and, read on its own, stay inside.
func (t *tree) add(name string, kind byte, target string) error {
	if _, dup := t.kinds[name]; dup {
		return refuse("%q appears twice", name)
	}
	if dir := path.Dir(name); dir != "." && t.kinds[dir] != tar.TypeDir {
		if _, ok := t.kinds[dir]; ok {
			return refuse("%q: its parent %q is not a directory", name, dir)
		}
		return refuse("%q comes before its directory %q", name, dir)
	}
	if kind == tar.TypeSymlink {
		switch {
		case target == "":
			return refuse("symlink %q has no target", name)
		case len(target) > maxPathLen || strings.ContainsRune(target, 0):
			return refuse("symlink %q: the target is not a usable path", name)
		case path.IsAbs(target):
			return refuse("symlink %q points to the absolute path %q: images hold only relative links that stay inside the image", name, target)
		case !filepath.IsLocal(path.Join(path.Dir(name), target)):
			return refuse("symlink %q → %q leads outside the image", name, target)
		}
		t.links[name] = target
		t.order = append(t.order, name)
	}
	t.kinds[name] = kind
	return nil
}

// checkLinks follows every symlink through the others, as the kernel would, and
// refuses one that leaves the tree at any step, or a chain longer than Linux
// follows (a loop).
func (t *tree) checkLinks() error {
	resolved := map[string]string{}
	for _, name := range t.order {
		if _, err := t.resolve(name, 0, resolved); err != nil {
			return err
		}
	}
	return nil
}

// resolve returns where the link name leads inside the tree ("" for its top),
// memoizing each link's result in resolved so that every link is walked once.
func (t *tree) resolve(name string, hops int, resolved map[string]string) (string, error) {
	if r, ok := resolved[name]; ok {
		return r, nil
	}
	target := t.links[name]
	if hops >= maxLinkHops {
		return "", refuse("symlink %q → %q: the chain of links is longer than %d (a loop?)", name, target, maxLinkHops)
	}
	cur := path.Dir(name)
	if cur == "." {
		cur = ""
	}
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if cur == "" {
				return "", refuse("symlink %q → %q leads outside the image", name, target)
			}
			if cur = path.Dir(cur); cur == "." {
				cur = ""
			}
		default:
			next := c
			if cur != "" {
				next = cur + "/" + c
			}
			if _, isLink := t.links[next]; isLink {
				r, err := t.resolve(next, hops+1, resolved)
				if err != nil {
					return "", err
				}
				next = r
			}
			cur = next
		}
	}
	resolved[name] = cur
	return cur, nil
}

// checkName returns the entry name of a tar header, or refuses one that is not
// clean, relative and inside the image ("a/b", never "/a", "../a", "a/../b" or "./a").
func checkName(hdr *tar.Header) (string, error) {
	name := hdr.Name
	if hdr.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	if name == "" || len(name) > maxPathLen || strings.ContainsRune(name, 0) ||
		!filepath.IsLocal(name) || path.Clean(name) != name {
		return "", refuse("entry %q is not a clean path inside the image", hdr.Name)
	}
	return name, nil
}
