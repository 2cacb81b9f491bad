package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/imago/imago/internal/atomicfile"
)

// errExists reports that create found the key already written.
var errExists = errors.New("already exists")

// isExists reports whether err is a failed create-if-not-exist.
func isExists(err error) bool {
	return errors.Is(err, errExists) || gcerrors.Code(err) == gcerrors.FailedPrecondition
}

// isNotFound reports whether err is a missing key.
func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

// fileDir finds the directory a file:// bucket URL stores its keys under, so that
// create can write them atomically (see createFile). It returns "" when the URL is
// not a file:// URL or when its keys cannot be mapped to paths simply.
func fileDir(rawURL string) string {
	if os.PathSeparator != '/' {
		return "" // fileblob escapes more characters there; use the gocloud writer
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "file" {
		return ""
	}
	p := u.Path
	if u.Host == "." {
		p = strings.TrimPrefix(p, "/")
	}
	if p == "" {
		return ""
	}
	abs, err := filepath.Abs(filepath.FromSlash(p))
	if err != nil {
		return ""
	}
	if prefix := u.Query().Get("prefix"); prefix != "" {
		if !strings.HasSuffix(prefix, "/") || !safeKey(strings.TrimSuffix(prefix, "/")) {
			return ""
		}
		abs = filepath.Join(abs, filepath.FromSlash(prefix))
	}
	return abs
}

var keySegmentRE = regexp.MustCompile(`^[A-Za-z0-9._:=+-]+$`)

// safeKey reports whether fileblob stores key at dir/key unescaped.
func safeKey(key string) bool {
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." || !keySegmentRE.MatchString(seg) || strings.HasSuffix(seg, ".attrs") {
			return false
		}
	}
	return true
}

// create writes key only if it does not exist yet; otherwise it fails with an
// error for which isExists is true. It is the catalog's only synchronisation
// primitive: every immutable object is written with it.
func (c *Catalog) create(ctx context.Context, key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if c.dir != "" && !c.noLinks.Load() && safeKey(key) {
		err := c.createFile(key, data)
		if !errors.Is(err, errLinkUnsupported) {
			return err
		}
		c.noLinks.Store(true)
	}
	return c.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
}

var errLinkUnsupported = errors.New("hard links unsupported")

// createFile is create for file:// buckets. fileblob implements IfNotExist by
// checking that the file is absent and then renaming a temporary file over it,
// which is not atomic: concurrent writers (goroutines or processes) can all
// "succeed" and silently overwrite each other. Instead the complete object is
// written to a temporary file and hard-linked into place; link(2) fails
// atomically when the target exists, and readers never see a partial object.
func (c *Catalog) createFile(key string, data []byte) error {
	final := filepath.Join(c.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return err
	}
	tmpDir := filepath.Join(c.dir, ".imago-tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return err
	}
	err := atomicfile.Create(final, tmpDir, data)
	var link *os.LinkError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s: %w", key, errExists)
	case errors.As(err, &link) && (errors.Is(err, fs.ErrPermission) || isLinkUnsupported(err)):
		return errLinkUnsupported
	default:
		return err
	}
}

// readJSON decodes the object at key into v. Missing keys give an error for
// which isNotFound is true.
func (c *Catalog) readJSON(ctx context.Context, key string, v any) error {
	data, err := c.bucket.ReadAll(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("catalog object %s is corrupt: %w", key, err)
	}
	return nil
}

// listKeys returns the keys under prefix, in lexical order.
func (c *Catalog) listKeys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	it := c.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list catalog %s: %w", prefix, err)
		}
		if !obj.IsDir {
			keys = append(keys, obj.Key)
		}
	}
}

// parallel runs fn(0..n-1) with bounded concurrency (object stores answer many
// small reads in parallel far faster than in sequence) and returns the first error.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	const workers = 16
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	sem := make(chan struct{}, workers)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		}(i)
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// isLinkUnsupported reports a file system that cannot hard-link the temporary
// file into place; create then falls back to fileblob's (non-atomic) IfNotExist.
func isLinkUnsupported(err error) bool {
	for _, e := range []syscall.Errno{syscall.EXDEV, syscall.ENOTSUP, syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.EMLINK} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
