// Package secretref resolves the secret references of a rollout's env:
// (DB_PASSWORD: {secret: "file:///etc/imago/db-password"}). A reference is what
// travels through Temporal; its value is read only where an instance starts, on
// the worker, and is never returned to a workflow.
//
// References are URLs:
//
//   - file:///abs/path reads a file on the worker's host (an absolute path; a
//     relative one would depend on the worker's directory);
//   - https://host/path (and http://) is the body of a 200 answer to a GET,
//     made through imago's outbound guard (internal/netguard), so a spec cannot
//     make the worker reach the cloud metadata service or, unless the operator
//     allows it with IMAGO_ANALYSIS_ALLOW, inner networks. (gocloud's httpvar
//     reads the same, but its Latest waits for a good value until its deadline:
//     a refused or missing reference would take the whole timeout to report.)
//
// One trailing newline of the value (a file written by echo) is dropped.
// Values are at most MaxBytes.
package secretref

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxBytes bounds a secret's value.
const MaxBytes = 64 << 10

// fetchTimeout bounds the read of one https reference.
const fetchTimeout = 15 * time.Second

// Check reports, without reading anything, whether ref is a reference imago can
// resolve. Its errors say what to write instead.
func Check(ref string) error {
	u, err := url.Parse(ref)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q is not a secret reference: write file:///abs/path or https://host/path", ref)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("%q names host %q: a file reference reads the worker's own files, write file:///abs/path (three slashes)", ref, u.Host)
		}
		if u.Opaque != "" || !filepath.IsAbs(u.Path) {
			return fmt.Errorf("%q: a file reference must be an absolute path, as file:///etc/imago/secret", ref)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%q: a file reference takes no query or fragment", ref)
		}
	case "https", "http":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", ref)
		}
		if u.User != nil {
			return fmt.Errorf("%s://…: a secret reference must not hold credentials (user:password@); it is stored in the workflow history", u.Scheme)
		}
	default:
		return fmt.Errorf("%q: scheme %s is not one imago reads secrets from; use file:///abs/path or https://host/path", Redact(ref), u.Scheme)
	}
	return nil
}

// Redact is ref without a userinfo part, for messages.
func Redact(ref string) string {
	u, err := url.Parse(ref)
	if err != nil {
		return "(unparsable reference)"
	}
	return u.Redacted()
}

// Resolve reads the value ref points to. client makes the request of an https
// reference; it must be the outbound guard's (netguard.Guard.Client). Errors
// name the reference, never a value.
func Resolve(ctx context.Context, client *http.Client, ref string) (string, error) {
	if err := Check(ref); err != nil {
		return "", err
	}
	u, _ := url.Parse(ref)
	var data []byte
	var err error
	if u.Scheme == "file" {
		data, err = readFile(u.Path)
	} else {
		data, err = fetch(ctx, client, ref)
	}
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", Redact(ref), err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("the file does not exist on the worker's host")
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, errors.New("is not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("is larger than %d bytes", MaxBytes)
	}
	return data, nil
}

func fetch(ctx context.Context, client *http.Client, ref string) ([]byte, error) {
	if client == nil {
		return nil, errors.New("no outbound client is configured for https references")
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its URL is the reference, named already
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET answered %s", resp.Status) // not the body: it may echo what it guards
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("is larger than %d bytes", MaxBytes)
	}
	return data, nil
}
