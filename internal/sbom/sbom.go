// Package sbom makes the software bill of materials of a local image archive
// (a tar.gz made by image.Pack): CycloneDX JSON, written with cyclonedx-go, and
// SPDX 2.3 JSON mapped from the same BOM and written with spdx/tools-golang.
//
// What it records, from the archive alone (nothing in it is run):
//   - every regular file, as a "file" component with its SHA-256;
//   - for each Go binary (debug/buildinfo), its Go version and main module as
//     properties of its file component, and every module it was built from as a
//     "library" component (purl pkg:golang/..., the go.sum hash as SHA-256);
//   - the Debian packages installed per var/lib/dpkg/status (purl pkg:deb/debian/...).
package sbom

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
	"github.com/package-url/packageurl-go"

	"github.com/imago/imago/internal/image"
)

// Subject names the image a BOM describes.
type Subject struct {
	ID      string    // image ID, the BOM's root component version
	Service string    // the root component's name
	Digest  string    // the archive's "sha256:<hex>"
	Created time.Time // the BOM's timestamp: an image's BOM is the same every time it is made
	// OCIDigest is the manifest digest of the image's OCI form (format: oci), if it
	// has one: the root component's PropOCIDigest property and its pkg:oci purl.
	OCIDigest string
}

// Property names imago writes.
const (
	PropGoVersion  = "imago:go:version" // on a Go binary's file component
	PropGoMain     = "imago:go:main"    // on a Go binary's file component: main module path
	PropGoSum      = "imago:go:sum"     // on a module component: the go.sum hash (h1:...)
	PropDebianArch = "imago:deb:arch"   // on a Debian package component
	PropOCIDigest  = "imago:oci:digest" // on the image (root) component: its OCI manifest digest
)

// dpkgStatus is where Debian keeps the installed packages' status.
const dpkgStatus = "var/lib/dpkg/status"

// maxBinary bounds the executables read into memory for debug/buildinfo: larger
// ones are still hashed, not inspected.
const maxBinary = 1 << 30

// Generate reads a local image archive and returns its BOM. lim bounds the bytes
// and entries read (zero fields: the image package's defaults).
func Generate(archive io.Reader, subj Subject, lim image.Limits) (*cdx.BOM, error) {
	lim = lim.WithDefaults()
	maxBytes, maxEntries := lim.MaxBytes, lim.MaxEntries
	gz, err := gzip.NewReader(archive)
	if err != nil {
		return nil, fmt.Errorf("sbom of image %s: %w", subj.ID, err)
	}
	defer gz.Close()
	lr := &io.LimitedReader{R: gz, N: maxBytes + 1}
	tr := tar.NewReader(lr)
	pastLimits := func() error {
		return fmt.Errorf("sbom of image %s: archive is past its limits (%d bytes, %d entries; %s, %s)", subj.ID, maxBytes, maxEntries, image.EnvMaxBytes, image.EnvMaxEntries)
	}

	var (
		files   []cdx.Component
		modules = map[string]cdx.Component{} // by bom-ref (the purl)
		debs    []cdx.Component
		deps    []cdx.Dependency
	)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if lr.N <= 0 || n >= maxEntries {
			return nil, pastLimits()
		}
		if err != nil {
			return nil, fmt.Errorf("sbom of image %s: %w", subj.ID, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		f, err := readFile(tr, hdr)
		if lr.N <= 0 {
			return nil, pastLimits()
		}
		if err != nil {
			return nil, fmt.Errorf("sbom of image %s: %s: %w", subj.ID, hdr.Name, err)
		}
		c := cdx.Component{
			BOMRef: "file:" + hdr.Name, Type: cdx.ComponentTypeFile, Name: hdr.Name,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.sha256}},
		}
		if f.build != nil {
			c.Properties = &[]cdx.Property{{Name: PropGoVersion, Value: f.build.GoVersion}, {Name: PropGoMain, Value: f.build.Main.Path}}
			var refs []string
			for _, m := range goModules(f.build) {
				modules[m.BOMRef] = m
				refs = append(refs, m.BOMRef)
			}
			deps = append(deps, cdx.Dependency{Ref: c.BOMRef, Dependencies: &refs})
		}
		if hdr.Name == dpkgStatus {
			debs = debianPackages(f.data)
		}
		files = append(files, c)
	}

	comps := make([]cdx.Component, 0, len(files)+len(modules)+len(debs))
	comps = append(comps, files...)
	refs := make([]string, 0, len(modules))
	for ref := range modules {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		comps = append(comps, modules[ref])
	}
	comps = append(comps, debs...)

	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("imago:image:"+subj.ID+":"+subj.Digest)).String()
	root := cdx.Component{BOMRef: subj.ID, Type: cdx.ComponentTypeContainer, Name: subj.Service, Version: subj.ID}
	if hexSum, ok := strings.CutPrefix(subj.Digest, "sha256:"); ok {
		root.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hexSum}}
	}
	if subj.OCIDigest != "" {
		root.Properties = &[]cdx.Property{{Name: PropOCIDigest, Value: subj.OCIDigest}}
		root.PackageURL = OCIPURL(subj.Service, subj.OCIDigest)
	}
	bom.Metadata = &cdx.Metadata{
		Timestamp: subj.Created.UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "imago"}}},
		Component: &root,
	}
	bom.Components = &comps
	if len(deps) > 0 {
		bom.Dependencies = &deps
	}
	return bom, nil
}

// file is what Generate learns from one regular file.
type file struct {
	sha256 string
	build  *buildinfo.BuildInfo // Go binaries
	data   []byte               // kept for the dpkg status file only
}

// readFile hashes the file at tr and, for executables and the dpkg status file,
// keeps what the BOM needs from them.
func readFile(tr io.Reader, hdr *tar.Header) (file, error) {
	br := bufio.NewReader(tr)
	magic, _ := br.Peek(4)
	keep := hdr.Name == dpkgStatus || (isExecutable(magic) && hdr.Size <= maxBinary)
	h := sha256.New()
	if !keep {
		if _, err := io.Copy(h, br); err != nil {
			return file{}, err
		}
		return file{sha256: hex.EncodeToString(h.Sum(nil))}, nil
	}
	data, err := io.ReadAll(io.TeeReader(br, h))
	if err != nil {
		return file{}, err
	}
	f := file{sha256: hex.EncodeToString(h.Sum(nil))}
	if hdr.Name == dpkgStatus {
		f.data = data
		return f, nil
	}
	if bi, err := buildinfo.Read(bytes.NewReader(data)); err == nil {
		f.build = bi
	} // else not a Go binary (or one without build information): just a file
	return f, nil
}

// isExecutable reports whether magic starts an ELF, Mach-O or PE file, the
// formats debug/buildinfo reads.
func isExecutable(magic []byte) bool {
	switch {
	case bytes.HasPrefix(magic, []byte("\x7fELF")), bytes.HasPrefix(magic, []byte("MZ")):
		return true
	}
	for _, m := range [][]byte{{0xfe, 0xed, 0xfa, 0xce}, {0xfe, 0xed, 0xfa, 0xcf}, {0xce, 0xfa, 0xed, 0xfe}, {0xcf, 0xfa, 0xed, 0xfe}} {
		if bytes.Equal(magic, m) {
			return true
		}
	}
	return false
}

// goModules lists the main module and the dependencies (after replacements) of
// a Go binary as library components.
func goModules(bi *buildinfo.BuildInfo) []cdx.Component {
	mods := []*debug.Module{&bi.Main}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		mods = append(mods, d)
	}
	var out []cdx.Component
	for _, m := range mods {
		if m.Path == "" {
			continue
		}
		purl := GoPURL(m.Path, m.Version)
		c := cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: m.Path, Version: m.Version, PackageURL: purl}
		if m.Sum != "" {
			c.Properties = &[]cdx.Property{{Name: PropGoSum, Value: m.Sum}}
			if raw, ok := strings.CutPrefix(m.Sum, "h1:"); ok {
				if sum, err := base64.StdEncoding.DecodeString(raw); err == nil && len(sum) == sha256.Size {
					c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex.EncodeToString(sum)}}
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// GoPURL is the package URL of Go module path at version: pkg:golang/path@version.
func GoPURL(path, version string) string {
	ns, name := "", path
	if i := strings.LastIndex(path, "/"); i >= 0 {
		ns, name = path[:i], path[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, version, nil, "").ToString()
}

// OCIPURL is the package URL of an OCI image by its manifest digest:
// pkg:oci/name@sha256:<hex> (the purl spec's oci type; no repository_url, since
// the same manifest may live in several places).
func OCIPURL(name, digest string) string {
	return packageurl.NewPackageURL(packageurl.TypeOCI, "", name, digest, nil, "").ToString()
}

// debianPackages reads a dpkg status file (RFC 822-style stanzas) and lists the
// installed packages. Written here: it is a dozen lines, and the Go libraries
// that parse Debian control files bring far more than this needs.
func debianPackages(status []byte) []cdx.Component {
	var out []cdx.Component
	for _, stanza := range strings.Split(strings.ReplaceAll(string(status), "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && line != "" && line[0] != ' ' && line[0] != '\t' {
				fields[k] = strings.TrimSpace(v)
			}
		}
		name, version := fields["Package"], fields["Version"]
		if name == "" || version == "" || !strings.HasSuffix(fields["Status"], " installed") {
			continue
		}
		var q packageurl.Qualifiers
		if arch := fields["Architecture"]; arch != "" {
			q = packageurl.QualifiersFromMap(map[string]string{"arch": arch})
		}
		purl := packageurl.NewPackageURL(packageurl.TypeDebian, "debian", name, version, q, "").ToString()
		c := cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: name, Version: version, PackageURL: purl}
		if arch := fields["Architecture"]; arch != "" {
			c.Properties = &[]cdx.Property{{Name: PropDebianArch, Value: arch}}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BOMRef < out[j].BOMRef })
	return out
}

// EncodeCycloneDX writes bom as indented CycloneDX JSON.
func EncodeCycloneDX(w io.Writer, bom *cdx.BOM) error {
	return cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON).SetPretty(true).Encode(bom)
}

// DecodeCycloneDX reads CycloneDX JSON.
func DecodeCycloneDX(data []byte) (*cdx.BOM, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, fmt.Errorf("decode CycloneDX SBOM: %w", err)
	}
	return &bom, nil
}
