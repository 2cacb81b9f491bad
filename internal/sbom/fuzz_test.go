package sbom

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/imago/imago/internal/image"
)

// FuzzGenerate feeds Generate tar streams (gzipped here, so the fuzzer works on
// the tar: names, dpkg status text, executable headers): it must never panic nor
// read past its limits, and whatever BOM it makes must encode as CycloneDX and
// map to SPDX.
func FuzzGenerate(f *testing.F) {
	dir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "var", "lib", "dpkg"), 0o755); err != nil {
		f.Fatal(err)
	}
	for name, body := range map[string]string{
		"var/lib/dpkg/status": status,
		"app":                 "\x7fELF\x02\x01\x01" + string(make([]byte, 64)),
		"run.sh":              "#!/bin/sh\necho hi\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(body), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	archive, err := image.Pack(dir)
	if err != nil {
		f.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		f.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, tarBytes []byte) {
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write(tarBytes)
		w.Close()
		bom, err := Generate(&gz, Subject{ID: "img-000000000001", Service: "fuzz", Digest: "sha256:00"}, image.Limits{MaxBytes: 1 << 20, MaxEntries: 1000})
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := EncodeCycloneDX(&out, bom); err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, err := DecodeCycloneDX(out.Bytes())
		if err != nil {
			t.Fatalf("decode what was encoded: %v", err)
		}
		if err := Write(io.Discard, back, FormatSPDX); err != nil {
			t.Fatalf("spdx: %v", err)
		}
	})
}
