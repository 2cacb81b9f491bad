package secretref

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imago/imago/internal/netguard"
)

func TestFileReferences(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "db")
	if err := os.WriteFile(p, []byte("pa ss\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := Resolve(context.Background(), nil, "file://"+p)
	if err != nil || v != "pa ss" {
		t.Fatalf("Resolve = %q, %v; want the value without its trailing newline", v, err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"file://" + filepath.Join(dir, "none"): "the file does not exist on the worker's host",
		"file://" + dir:                        "is not a regular file",
		"file://" + big:                        "is larger than",
		"file:relative/path":                   "must be an absolute path",
		"file://host/etc/x":                    `names host "host"`,
		"vault://x/y":                          "scheme vault is not one imago reads secrets from",
		"/etc/secret":                          "is not a secret reference",
		"https://user:pw@example.com/x":        "must not hold credentials",
	} {
		_, err := Resolve(context.Background(), nil, ref)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(%q) = %v; want %q", ref, err, want)
		}
		if strings.Contains(ref, "pw@") && strings.Contains(err.Error(), "pw") {
			t.Errorf("the error shows the reference's password: %v", err)
		}
	}
}

func TestHTTPReferencesGoThroughTheGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" {
			http.Error(w, "no such secret; the others are: hunter2", http.StatusNotFound)
			return
		}
		w.Write([]byte("tok-123\n"))
	}))
	defer srv.Close()

	// Loopback is an inner address: refused unless the operator allows it.
	_, err := Resolve(context.Background(), netguard.New(netguard.Allow{}).Client(0), srv.URL+"/token")
	if !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("Resolve without allow = %v; want the guard's refusal", err)
	}
	allowed := netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)
	v, err := Resolve(context.Background(), allowed, srv.URL+"/token")
	if err != nil || v != "tok-123" {
		t.Fatalf("Resolve = %q, %v", v, err)
	}
	_, err = Resolve(context.Background(), allowed, srv.URL+"/other")
	if err == nil || !strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Resolve of a missing secret = %v; want its status, not its body", err)
	}
}
